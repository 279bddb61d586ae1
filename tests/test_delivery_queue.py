"""The Redis queue between server processes notices what it loses (realtime/queue.py): with a
redis-server of the test's own, killed and started again."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import pytest
import redis
import socketio
from test_delivery import Redis

from marketplace.realtime.queue import RESYNC, ResyncingRedisManager

pytestmark = pytest.mark.live  # a real redis-server, and the listener's real back-off


def emit_to(room: str | None) -> dict[str, Any]:
    return {"method": "emit", "event": "notification", "data": [{"id": 1}], "binary": False,
            "namespace": "/", "room": room, "skip_sid": None, "callback": None,
            "host_id": "another-process"}


def test_lost_publishes_become_one_resync_for_their_rooms_once_redis_is_back() -> None:
    server_redis = Redis()
    server_redis.start()
    manager = ResyncingRedisManager(server_redis.url, channel="resync-test")
    socketio.Server(client_manager=manager, async_mode="threading")
    local: queue.Queue[tuple[str, Any]] = queue.Queue()
    manager._resync_local = lambda: local.put(("local", None))  # type: ignore[method-assign]
    try:
        manager.initialize()
        assert local.get(timeout=10) == ("local", None)  # the first subscription, heard back
        server_redis.kill()
        for room in ("user:7", "user:3", "user:7", "sid-of-a-local-connection"):
            assert manager._publish(emit_to(room)) is None  # given up on
        server_redis.start()
        watcher = redis.Redis(port=server_redis.port).pubsub(ignore_subscribe_messages=True)
        watcher.subscribe("resync-test")
        deadline = time.monotonic() + 10
        resyncs = []
        while not resyncs and time.monotonic() < deadline:
            message = watcher.get_message(timeout=1)
            if message and json.loads(message["data"]).get("event") == RESYNC:
                resyncs.append(json.loads(message["data"]))
        assert [(m["room"], m["host_id"]) for m in resyncs] == [
            (["user:3", "user:7"], manager.host_id)]  # once, for the users whose rooms lost
        # and the broken subscription came back: this process's connections are told too
        assert local.get(timeout=15) == ("local", None)
        assert manager._lost_rooms == set() and not manager._lost_everyone
        # a lost broadcast resyncs everyone
        server_redis.kill()
        assert manager._publish(emit_to(None)) is None
        assert manager._lost_everyone
        watcher.close()
    finally:
        stop(manager)
        server_redis.kill()


def test_a_disconnect_lost_while_redis_is_away_goes_out_once_it_is_back() -> None:
    """A revoked session's connection held by another process is cut after the outage, not
    left open (it would go on receiving its user's notifications)."""
    server_redis = Redis()
    server_redis.start()
    manager = ResyncingRedisManager(server_redis.url, channel="cut-test")
    socketio.Server(client_manager=manager, async_mode="threading")
    manager._resync_local = lambda: None  # type: ignore[method-assign]
    try:
        manager.initialize()
        server_redis.kill()
        cut = {"method": "disconnect", "sid": "held-by-another-process", "namespace": "/",
               "host_id": manager.host_id}
        assert manager._publish(cut) is None  # given up on, and remembered
        assert manager._lost_disconnects == [cut]
        server_redis.start()
        watcher = redis.Redis(port=server_redis.port).pubsub(ignore_subscribe_messages=True)
        watcher.subscribe("cut-test")
        deadline = time.monotonic() + 10
        heard = []
        while not heard and time.monotonic() < deadline:
            message = watcher.get_message(timeout=1)
            if message and json.loads(message["data"]).get("method") == "disconnect":
                heard.append(json.loads(message["data"]))
        assert heard == [cut]
        assert manager._lost_disconnects == []
        watcher.close()
    finally:
        stop(manager)
        server_redis.kill()


def stop(manager: ResyncingRedisManager) -> None:
    """Quiet the manager's threads: nothing owed (the retry loop returns), and the listener's
    next reconnection parks it for good (the library's loop never ends by itself)."""
    with manager._lock:
        manager._lost_everyone, manager._lost_rooms, manager._marker_due = False, set(), False
        manager._lost_disconnects = []
    manager._redis_connect = threading.Event().wait  # type: ignore[method-assign, assignment]
