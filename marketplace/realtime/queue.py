"""The message queue between server processes (Redis), made to notice what it loses.

python-socketio's ``RedisManager`` publishes each emit for the other processes and, when Redis
is away, logs "Cannot publish to redis... giving up" and drops it; a process whose subscription
broke misses whatever was published until it is subscribed again. Neither is told to anyone.
The notifications themselves are stored, so nothing is lost for a client that knows to catch
up: this manager tells it to, with the live-only event ``resync`` (docs/events.md, "Delivery
without loss"):

- **a publish that failed**: the rooms it was meant for (users' private rooms; every connection
  when it was a broadcast) are remembered, and once Redis takes a publish again ``resync`` is
  published to those rooms, for the other processes' connections (this process delivered its
  own already);
- **a subscription that (re)started** (redis-py reconnected it, or the listener made a new one,
  or the first one came up late): the process publishes a marker to itself, and when the
  marker comes back through Redis (so the subscription is live: anything published from then
  on arrives), it sends ``resync`` to every connection it holds, since it cannot know what it
  missed. (At start-up that is no connection, or ones that have just caught up.)

A client that gets ``resync`` asks for ``replay`` from the last seq it holds without a gap.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from socketio import RedisManager

log = logging.getLogger(__name__)

RESYNC = "resync"
USER_ROOM_PREFIX = "user:"
# Beyond this many rooms to resync, every connection is told instead (one short message).
MAX_ROOMS = 10_000
_MARKER = "mkt.resubscribed"


class ResyncingRedisManager(RedisManager):
    """``RedisManager`` that sends ``resync`` after it lost messages (see the module)."""

    # How soon what is owed is tried again while nothing else publishes: at first, and at most
    # (doubling while Redis stays away, so a long outage logs a failure every few seconds).
    retry_seconds, retry_max_seconds = 0.5, 4.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._lost_rooms: set[str] = set()
        self._lost_everyone = False
        # disconnects (a revoked session's or token's connections) that other processes may
        # not have heard: published again once Redis takes a publish, so no cut connection
        # outlives an outage
        self._lost_disconnects: list[dict[str, Any]] = []
        # after a (re)subscription, this process's marker goes out until it is heard back
        self._marker = f"{_MARKER}:{self.host_id}"
        self._marker_due = False
        self._retrying = False
        self.resyncs_sent = 0  # counts, for logs and tests
        self.local_resyncs = 0
        self._live: Any = None  # set once this process hears its own marker back

    # --- publishing -------------------------------------------------------------------------

    def _publish(self, data: Any) -> Any:
        result = super()._publish(data)
        if result is None:  # RedisManager gave up on it (it returns the receiver count)
            self._lost(data)
        elif self._lost_rooms or self._lost_everyone or self._lost_disconnects:
            self._recover()
        return result

    def _lost(self, data: Any) -> None:
        if isinstance(data, dict) and data.get("method") == "disconnect":
            with self._lock:
                self._lost_disconnects.append(data)
            self._start_retrying()
            return
        if not isinstance(data, dict) or data.get("method") != "emit":
            return
        room = data.get("room")
        rooms = room if isinstance(room, list) else [room]
        with self._lock:
            for name in rooms:
                if name is None:
                    self._lost_everyone = True
                elif isinstance(name, str) and name.startswith(USER_ROOM_PREFIX):
                    self._lost_rooms.add(name)
                # any other room is a single connection this process holds: emitted already
            if len(self._lost_rooms) > MAX_ROOMS:
                self._lost_everyone, self._lost_rooms = True, set()
        self._start_retrying()

    def _start_retrying(self) -> None:
        with self._lock:
            if self._retrying or self.server is None:
                return
            self._retrying = True
        self.server.start_background_task(self._retry_loop)

    def _retry_loop(self) -> None:
        delay = self.retry_seconds
        while True:
            self.server.sleep(delay)
            delay = self.retry_seconds if self._recover() else min(2 * delay,
                                                                   self.retry_max_seconds)
            with self._lock:
                if not (self._lost_rooms or self._lost_everyone or self._lost_disconnects
                        or self._marker_due):
                    self._retrying = False
                    return

    def _recover(self) -> bool:
        """Publish what is owed: ``resync`` to the rooms that lost a message, and the marker
        after a (re)subscription (again each round until it is heard). Whatever fails stays
        owed; False when Redis refused."""
        reached = True
        with self._lock:
            cuts, self._lost_disconnects = self._lost_disconnects, []
        for index, message in enumerate(cuts):
            if RedisManager._publish(self, message) is None:
                with self._lock:
                    self._lost_disconnects[:0] = cuts[index:]
                return False
            log.warning("live delivery: a disconnect lost while Redis was away went out again")
        with self._lock:
            everyone, rooms = self._lost_everyone, sorted(self._lost_rooms)
            self._lost_everyone, self._lost_rooms = False, set()
        if everyone or rooms:
            message = {"method": "emit", "event": RESYNC, "data": [{}], "binary": False,
                       "namespace": "/", "room": None if everyone else rooms,
                       "skip_sid": None, "callback": None, "host_id": self.host_id}
            if RedisManager._publish(self, message) is None:
                reached = False
                with self._lock:
                    self._lost_everyone |= everyone
                    self._lost_rooms.update(rooms)
            else:
                self.resyncs_sent += 1
                log.warning("live delivery: messages were lost while Redis was away; "
                            "told %s to resync", "every connection" if everyone
                            else f"{len(rooms)} users")
        if self._marker_due and reached and RedisManager._publish(
                self, {"method": self._marker, "host_id": self.host_id}) is None:
            reached = False
        return reached

    # --- listening --------------------------------------------------------------------------

    def _redis_connect(self) -> None:
        super()._redis_connect()
        # Publishes go through ``self.redis``, whose commands give up after
        # REDIS_SOCKET_TIMEOUT (redis_options): a hung Redis must not hold a request. The
        # subscription waits for messages for as long as none come, so it reads on a client of
        # its own without that limit (keepalive finds a dead peer).
        options = {k: v for k, v in self.redis_options.items() if k != "socket_timeout"}
        listener = type(self.redis).from_url(self.redis_url, socket_keepalive=True, **options)
        self.pubsub = listener.pubsub(ignore_subscribe_messages=True)
        # The listener subscribes each new subscriber (its first, and one per retry after an
        # error); redis-py calls the subscriber's ``on_connect`` when it reconnects one by
        # itself (and re-subscribes). Both mean "subscribed (again)". redis-py keeps the
        # callback as a weak method, so the hook is an object the subscriber holds.
        pubsub = self.pubsub
        hook = _SubscribeHook(pubsub.subscribe, pubsub.on_connect, self._subscribed)
        pubsub._mkt_subscribe_hook = hook
        pubsub.subscribe = hook.subscribe
        pubsub.on_connect = hook.on_connect

    def wait_live(self, timeout: float) -> bool:
        """Wait until the subscription is live (its marker came back through Redis); False
        when ``timeout`` seconds passed first."""
        return bool(self._live_event().wait(timeout))

    def _live_event(self) -> Any:
        if self._live is None:
            self._live = self.server.eio.create_event()
        return self._live

    def _subscribed(self) -> None:
        with self._lock:
            self._marker_due = True
        self._live_event().clear()
        self._start_retrying()

    def _listen(self) -> Any:
        marker = self._marker.encode()
        for message in super()._listen():
            if self._marker_due and marker in (
                    message.encode() if isinstance(message, str) else message):
                with self._lock:
                    self._marker_due = False
                self._live_event().set()
                self._resync_local()
                continue  # the library's loop ignores its own host's messages anyway
            yield message

    def _resync_local(self) -> None:
        """Every connection of this process may have missed something: tell each."""
        self.local_resyncs += 1
        (log.warning if self.local_resyncs > 1 else log.debug)(
            "live delivery: the Redis subscription came back; telling this process's "
            "connections to resync")
        self.emit(RESYNC, {}, namespace="/", ignore_queue=True)


class _SubscribeHook:
    """The subscriber's ``subscribe`` and ``on_connect``, each followed by word to the
    manager."""

    def __init__(self, subscribe: Any, on_connect: Any, then: Any) -> None:
        self._subscribe, self._on_connect, self.then = subscribe, on_connect, then

    def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        result = self._subscribe(*args, **kwargs)
        self.then()
        return result

    def on_connect(self, connection: Any) -> None:
        self._on_connect(connection)
        self.then()
