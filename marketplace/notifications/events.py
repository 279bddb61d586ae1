"""Socket.IO handlers. Authentication happens in ``connect``; the server alone picks rooms."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, join_room

from marketplace.accounts.auth import user_for_token
from marketplace.extensions import db, socketio
from marketplace.notifications import services
from marketplace.realtime import room_for

REPLAY_BATCH = 500


def _user_from(auth: Any) -> Any:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return user_for_token(auth["token"])
    if current_user.is_authenticated:
        return current_user._get_current_object()
    return None


@socketio.on("connect")
def connect(auth: Any = None) -> None:
    user = _user_from(auth)
    if user is None:
        raise ConnectionRefusedError("unauthorized: pass auth={'token': ...} or sign in")
    last_id = auth.get("last_id") if isinstance(auth, dict) else None
    if last_id is None:
        join_room(room_for(user.id))
        return
    if isinstance(last_id, bool) or not isinstance(last_id, int) or last_id < 0:
        raise ConnectionRefusedError("last_id must be a non-negative integer")
    socketio.start_background_task(_replay_then_join, current_app._get_current_object(),
                                   request.sid, user.id, last_id)


def _replay(sid: str, user_id: int, after_id: int) -> int:
    while True:
        batch = services.after(user_id, after_id, REPLAY_BATCH)
        for note in batch:
            socketio.emit("notification", note.as_event(), to=sid)
            after_id = note.id
        if len(batch) < REPLAY_BATCH:
            return after_id


def _replay_then_join(app: Any, sid: str, user_id: int, last_id: int) -> None:
    """Send what was missed, then join the live room, then send anything that committed in
    between. Delivery is at-least-once: a client de-duplicates by id."""
    with app.app_context():
        seen = _replay(sid, user_id, last_id)
        socketio.server.enter_room(sid, room_for(user_id), namespace="/")
        db.session.remove()
        _replay(sid, user_id, seen)
        db.session.remove()
