"""Socket.IO handlers. Authentication happens in ``connect``; the server alone picks rooms.

Catching up is paged (docs/events.md, "Catching up"): a connection with ``last_seq`` (or, for
older clients, ``last_id``) gets at most ``REPLAY_PAGE`` notifications, then ``replay.more`` and
nothing else until it asks for the next page with ``replay``; the page that is not full ends
with ``replay.done`` and live delivery. So no connection, however far behind, costs more than
one page per request. A live connection asks for ``replay`` again when it sees a gap in its
seqs or is sent ``resync`` (docs/events.md, "Delivery without loss").
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, SocketIO

from marketplace.accounts import sessions
from marketplace.accounts.auth import token_for
from marketplace.errors import DomainError
from marketplace.extensions import db, socketio, spend
from marketplace.notifications import services
from marketplace.notifications.schemas import MAX_ID
from marketplace.realtime.emit import room_for

REPLAY_PAGE = 100


# The connections this process holds (for the heartbeat that keeps their rows fresh).
LOCAL: set[str] = set()


def _authenticate(auth: Any) -> tuple[Any, dict[str, int | None]]:
    """Who connects, and with what: an API token, or the web session of the cookie."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        token = token_for(auth["token"])
        if token is None:
            return None, {}
        return token.user, {"api_token_id": token.id}
    if current_user.is_authenticated:
        web = sessions.current()
        return current_user._get_current_object(), {"web_session_id": web.id if web else None}
    return None, {}


def _position(value: Any) -> int | None:
    """A notification id a client may resume after, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        return None
    return value


def _resume_from(data: Any, seq_key: str, id_key: str) -> tuple[str, int] | str | None:
    """Where a client resumes: ``("seq", n)`` or ``("id", n)``; None when it gave neither;
    the name of the field when that is not a position (a seq wins when both are given)."""
    if not isinstance(data, dict):
        return None
    for kind, key in (("seq", seq_key), ("id", id_key)):
        if data.get(key) is not None:
            position = _position(data[key])
            return key if position is None else (kind, position)
    return None


def connect(auth: Any = None) -> None:
    user, by = _authenticate(auth)
    if user is None:
        raise ConnectionRefusedError("unauthorized: pass auth={'token': ...} or sign in")
    resume = _resume_from(auth, "last_seq", "last_id")
    if isinstance(resume, str):
        raise ConnectionRefusedError(f"{resume} must be an integer from 0 to {MAX_ID}")
    try:
        sessions.connected(request.sid, user, **by)
    except DomainError as exc:
        raise ConnectionRefusedError(exc.message) from None
    LOCAL.add(request.sid)
    socketio.server.save_session(request.sid, {"user_id": user.id})
    if resume is None:
        socketio.server.enter_room(request.sid, room_for(user.id), namespace="/")
        return
    socketio.start_background_task(_replay_in_context, current_app._get_current_object(),
                                   request.sid, user.id, *resume)


def replay(data: Any = None) -> dict[str, Any] | None:
    """The next page after ``data["after_seq"]`` (or ``data["after"]``, an id); answers (as the
    ack) only when that is refused."""
    resume = _resume_from(data, "after_seq", "after")
    if not isinstance(resume, tuple):
        field = resume or "after_seq"
        message = (f"Give after_seq: the last seq you hold without a gap (0 to {MAX_ID})."
                   if field == "after_seq" else
                   f"Give after: the last notification id you received (0 to {MAX_ID}).")
        return {"error": {"status": 400, "code": "bad_request", "message": message,
                          "fields": {field: [message]}}}
    if not sessions.still_connected(request.sid):  # its session or token ended meanwhile
        socketio.server.disconnect(request.sid, namespace="/")
        return None
    if not spend("RATE_LIMIT_REPLAYS", request.sid):  # per connection; nothing is sent
        limit = current_app.config["RATE_LIMIT_REPLAYS"]
        return {"error": {"status": 429, "code": "too_many_requests",
                          "message": f"Too many replay requests: the limit is {limit} per "
                                     "connection. Wait, then ask again."}}
    user_id = socketio.server.get_session(request.sid)["user_id"]
    _replay_page(request.sid, user_id, *resume)
    return None


def disconnect(reason: Any = None) -> None:
    LOCAL.discard(request.sid)
    sessions.disconnected(request.sid)


def cut(sids: list[str]) -> None:
    """Disconnect connections whose session or token ended (through Redis, on whichever
    process holds each)."""
    for sid in sids:
        socketio.server.disconnect(sid, namespace="/")


def _replay_in_context(app: Any, sid: str, user_id: int, kind: str, position: int) -> None:
    with app.app_context():
        _replay_page(sid, user_id, kind, position)


def _send_page(sid: str, user_id: int, kind: str, after: int) -> tuple[int, bool]:
    """Send up to a page after ``after`` (a seq or an id, as ``kind`` says); the seq or id of
    the last one sent, and whether more are waiting."""
    read = services.after_seq if kind == "seq" else services.after
    batch = read(user_id, after, REPLAY_PAGE + 1)
    for note in batch[:REPLAY_PAGE]:  # to a connection of this process: not through Redis
        socketio.server.emit("notification", note.as_event(), to=sid, namespace="/",
                             ignore_queue=True)
        after = note.seq if kind == "seq" else note.id
    db.session.remove()  # the next read starts afresh (on SQLite, a new snapshot)
    return after, len(batch) > REPLAY_PAGE


def _replay_page(sid: str, user_id: int, kind: str, after: int) -> None:
    """One page of catching up. When it is the last, join the live room and send whatever
    committed in between. Delivery is at-least-once: a client de-duplicates by id. The
    signal that ends the page says where it ended, as ``last_seq`` or ``last_id``, whichever
    the client resumed by."""
    after, more = _send_page(sid, user_id, kind, after)
    if not more:
        socketio.server.enter_room(sid, room_for(user_id), namespace="/")
        after, more = _send_page(sid, user_id, kind, after)
    key = "last_seq" if kind == "seq" else "last_id"
    socketio.server.emit("replay.more" if more else "replay.done", {key: after}, to=sid,
                         namespace="/", ignore_queue=True)


def register(server: SocketIO) -> None:
    """Register the handlers (explicitly, once, from ``realtime.init_app``)."""
    server.on_event("connect", connect)
    server.on_event("disconnect", disconnect)
    server.on_event("replay", replay)
    sessions.on_cut(cut)
