"""The one place that emits: committed notifications and live-only signals, each to its
recipient's private room (through Redis when configured)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from engineio import packet as eio_packet
from socketio import PubSubManager, packet

from marketplace.extensions import socketio


def room_for(user_id: int) -> str:
    return f"user:{user_id}"


class PreEncoded(str):
    """One Socket.IO event argument that is JSON text already."""


class Packet(packet.Packet):
    """Socket.IO packets as this server writes them. It never sends binary payloads, so no
    packet is walked looking for bytes; and an event whose argument is ``PreEncoded`` is
    written around that text instead of encoding it again."""

    uses_binary_events = False

    def encode(self) -> Any:
        data = self.data
        if (self.packet_type == packet.EVENT and self.namespace in (None, "/") and self.id is None
                and isinstance(data, list) and len(data) == 2
                and isinstance(data[1], PreEncoded)):
            return f"{packet.EVENT}[{json.dumps(data[0])},{data[1]}]"
        return super().encode()


def emit_events(events: list[tuple[int, dict[str, Any]]]) -> None:
    """Deliver committed notifications to their recipients' private rooms (through Redis
    when configured, so every server process's clients get them). Within one process each
    goes out as the JSON text the outbox encoded once; through Redis, whose messages are JSON
    themselves, as the object."""
    server = socketio.server
    if isinstance(server.manager, PubSubManager):
        for user_id, event in events:
            socketio.emit("notification", event, to=room_for(user_id))
        return
    # One process: what ``Manager.emit`` does for a room, without the layers above it per
    # event (Flask-SocketIO's and python-socketio's emit, a Packet object): the Engine.IO
    # packet is written around the text the outbox encoded, for every sid in the recipient's
    # room -- straight to its WebSocket where that is safe (below), else queued.
    eio, rooms = server.eio, server.manager.rooms.get("/", {})
    environs = server.environ if _direct_writes(eio) else None
    for user_id, event in events:
        wire = getattr(event, "wire", None)
        if wire is None:
            socketio.emit("notification", event, to=room_for(user_id))
            continue
        room = rooms.get(room_for(user_id))
        if not room:
            continue  # nobody connected to this process (Manager.emit would find no one)
        text = f'{packet.EVENT}["notification",{wire}]'
        frame: bytes | None = None
        for eio_sid in list(room.values()):  # a copy: a socket found dead leaves the room
            if environs is not None:
                sock = eio.sockets.get(eio_sid)
                ws = environs.get(eio_sid, {}).get("wsgi.websocket") or _UPGRADED.get(eio_sid)
                if sock is not None and ws is not None and _writable(sock):
                    if frame is None:
                        frame = _ws_frame(f"{eio_packet.MESSAGE}{text}".encode())
                    if _write_now(ws, frame):
                        continue
            eio.send_packet(eio_sid, eio_packet.Packet(eio_packet.MESSAGE, text))


# --------------------------------------------------------------------------------------------
# Writing a notification's WebSocket frame from the emitting greenlet (gevent-websocket only).
#
# Engine.IO gives every connection a queue and a writer greenlet; each packet queued wakes
# that greenlet, which waits on the queue with a timeout and then writes one frame: at a
# fan-out to 1,000 providers that was a third of the server's CPU (docs/performance.md). When
# the connection's queue is empty and nothing is in the middle of writing to its socket, the
# frame is written right here instead, exactly as the writer would have written it: nothing
# queued before it is still unsent, so the order per connection holds. Whatever does not fit
# -- a queue with packets, a socket another greenlet is writing to, the socket's buffer full --
# goes through the queue as before.


# Engine.IO sid -> gevent-websocket WebSocket of a connection that began with long-polling
# and was upgraded (a browser's default): its session's environ is the first polling
# request's, which has no WebSocket. Kept by ``track_upgrades`` for as long as the upgrade
# request runs, which is as long as the WebSocket lives.
_UPGRADED: dict[str, Any] = {}


def track_upgrades(wsgi_app: Any) -> Any:
    """WSGI middleware (outermost): remember the WebSocket of each upgrade request
    (``?sid=...&transport=websocket``) while it runs."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        ws = environ.get("wsgi.websocket")
        sid = None
        if ws is not None:
            query = parse_qs(environ.get("QUERY_STRING", ""))
            if query.get("transport") == ["websocket"] and len(query.get("sid", ())) == 1:
                sid = query["sid"][0]
                _UPGRADED[sid] = ws
        try:
            return wsgi_app(environ, start_response)
        finally:
            if sid is not None and _UPGRADED.get(sid) is ws:
                del _UPGRADED[sid]

    return app


def _direct_writes(eio: Any) -> bool:
    return bool(eio.async_mode == "gevent" and _geventwebsocket is not None)


def _writable(sock: Any) -> bool:
    """The Engine.IO socket is an open WebSocket with nothing waiting in its queue (so its
    writer greenlet has written all it was given)."""
    return bool(sock.upgraded and not sock.upgrading and not sock.closing and not sock.closed
                and sock.queue.empty() and sock.check_ping_timeout())


try:
    import geventwebsocket as _geventwebsocket
    from gevent.socket import socket as _PLAIN_SOCKET
except ImportError:  # pragma: no cover  (gevent and gevent-websocket are dependencies)
    _geventwebsocket = None  # type: ignore[assignment]
    _PLAIN_SOCKET = None  # type: ignore[assignment,misc]


def _ws_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame holding ``payload`` (UTF-8): what gevent-websocket's
    ``send_frame`` writes for it (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


# WebSockets whose last frame is being finished by a greenlet of ``_finish``.
_finishing: set[Any] = set()


def _write_now(ws: Any, frame: bytes) -> bool:
    """Write ``frame`` to gevent-websocket's ``ws`` now, without yielding, if nothing else is
    writing to it; False if it was not written at all (then it must be queued)."""
    if ws.closed or ws in _finishing:
        return False
    gsock = getattr(ws.handler, "socket", None)
    if type(gsock) is not _PLAIN_SOCKET:
        return False  # e.g. TLS served by gevent itself: its bytes must go through the SSL layer
    watcher = getattr(gsock, "_write_event", None)
    # A greenlet blocked in the middle of writing to this socket waits on its write watcher
    # (gevent's own test for a socket in use by another greenlet).
    if watcher is None or watcher.callback is not None:
        return False
    try:
        sent = gsock._sock.send(frame)  # the non-blocking socket underneath: never yields
    except OSError:  # full (EAGAIN) or dead: nothing was written; the writer will see
        return False
    if sent < len(frame):
        _finish(ws, gsock, frame[sent:])
    return True


def _finish(ws: Any, gsock: Any, rest: bytes) -> None:
    """A frame only partly written (the socket's buffer filled up): a greenlet writes the
    rest, and until it has, every other write to ``ws`` (its writer's, a pong) waits for it
    and new notifications for it are queued."""
    import gevent
    from gevent.event import Event

    done = Event()
    original = ws.raw_write

    def after_the_rest(data: bytes) -> Any:
        done.wait()
        return original(data)

    def write_the_rest() -> None:
        try:
            gsock.sendall(rest)
        except OSError:
            pass  # a dead socket: its reader and writer find out and close it
        finally:
            if ws.raw_write is after_the_rest:
                ws.raw_write = original
            _finishing.discard(ws)
            done.set()

    _finishing.add(ws)
    ws.raw_write = after_the_rest
    gevent.spawn(write_the_rest)


def emit_signals(signals: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Deliver committed live-only hints (docs/events.md, "Live-only signals")."""
    for user_id, name, data in signals:
        socketio.emit(name, data, to=room_for(user_id))
