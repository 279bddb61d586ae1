"""Socket.IO handlers. Authentication happens in ``connect``; the server alone picks rooms.

Catching up is paged (docs/events.md, "Catching up"): a connection with ``last_id`` gets at
most ``REPLAY_PAGE`` notifications, then ``replay.more`` and nothing else until it asks for the
next page with ``replay``; the page that is not full ends with ``replay.done`` and live
delivery. So no connection, however far behind, costs more than one page per request.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, SocketIO

from marketplace.accounts.auth import user_for_token
from marketplace.extensions import db, socketio
from marketplace.notifications import services
from marketplace.notifications.schemas import MAX_ID
from marketplace.realtime.emit import room_for

REPLAY_PAGE = 100


def _user_from(auth: Any) -> Any:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return user_for_token(auth["token"])
    if current_user.is_authenticated:
        return current_user._get_current_object()
    return None


def _position(value: Any) -> int | None:
    """A notification id a client may resume after, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        return None
    return value


def connect(auth: Any = None) -> None:
    user = _user_from(auth)
    if user is None:
        raise ConnectionRefusedError("unauthorized: pass auth={'token': ...} or sign in")
    socketio.server.save_session(request.sid, {"user_id": user.id})
    if not isinstance(auth, dict) or auth.get("last_id") is None:
        socketio.server.enter_room(request.sid, room_for(user.id), namespace="/")
        return
    last_id = _position(auth["last_id"])
    if last_id is None:
        raise ConnectionRefusedError(f"last_id must be an integer from 0 to {MAX_ID}")
    socketio.start_background_task(_replay_in_context, current_app._get_current_object(),
                                   request.sid, user.id, last_id)


def replay(data: Any = None) -> dict[str, Any] | None:
    """The next page after ``data["after"]``; answers (as the ack) only when that is refused."""
    after = _position(data.get("after")) if isinstance(data, dict) else None
    if after is None:
        message = f"Give after: the last notification id you received (0 to {MAX_ID})."
        return {"error": {"status": 400, "code": "bad_request", "message": message,
                          "fields": {"after": [message]}}}
    user_id = socketio.server.get_session(request.sid)["user_id"]
    _replay_page(request.sid, user_id, after)
    return None


def _replay_in_context(app: Any, sid: str, user_id: int, last_id: int) -> None:
    with app.app_context():
        _replay_page(sid, user_id, last_id)


def _send_page(sid: str, user_id: int, after_id: int) -> tuple[int, bool]:
    """Send up to a page after ``after_id``; the last id sent, and whether more are waiting."""
    batch = services.after(user_id, after_id, REPLAY_PAGE + 1)
    for note in batch[:REPLAY_PAGE]:
        socketio.emit("notification", note.as_event(), to=sid)
        after_id = note.id
    db.session.remove()  # the next read starts afresh (on SQLite, a new snapshot)
    return after_id, len(batch) > REPLAY_PAGE


def _replay_page(sid: str, user_id: int, after_id: int) -> None:
    """One page of catching up. When it is the last, join the live room and send whatever
    committed in between. Delivery is at-least-once: a client de-duplicates by id."""
    after_id, more = _send_page(sid, user_id, after_id)
    if not more:
        socketio.server.enter_room(sid, room_for(user_id), namespace="/")
        after_id, more = _send_page(sid, user_id, after_id)
    socketio.emit("replay.more" if more else "replay.done", {"last_id": after_id}, to=sid)


def register(server: SocketIO) -> None:
    """Register the handlers (explicitly, once, from ``realtime.init_app``)."""
    server.on_event("connect", connect)
    server.on_event("replay", replay)
