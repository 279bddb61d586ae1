"""Sessions that end, and live connections that follow them.

A web sign-in is a ``WebSession`` row: the browser holds a random key (in Flask's signed cookie
session and, with "remember me", in the remember-me cookie), the database its SHA-256. Every
request looks the key up, so signing out — here, or everywhere — revokes the row and a replayed
cookie signs nobody in. A sign-in always makes a new key (the session id rotates), and a
remember-me cookie is rotated each time it restores a session, so a stolen one is good once.

Every Socket.IO connection is a ``LiveConnection`` row naming what authenticated it. Ending a
session, revoking a token (or erasing, suspending an account) deletes the rows and hands their
sids to the realtime edge (``on_cut``), which disconnects them on whichever process holds them.
Rows carry a heartbeat, so a process that died without cleaning up cannot hold a user's
connection slots for ever.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta

from flask import current_app, g
from sqlalchemy import bindparam, delete, func, select, update

from marketplace.accounts.models import LiveConnection, User, WebSession
from marketplace.db_types import utcnow
from marketplace.errors import DomainError
from marketplace.extensions import db

_TOUCH_EVERY = timedelta(minutes=5)
_cutters: list[Callable[[list[str]], None]] = []


class TooManyConnections(DomainError):
    status = 429
    code = "too_many_connections"


def on_cut(cutter: Callable[[list[str]], None]) -> None:
    """Register what disconnects live connections by sid (the realtime edge)."""
    if cutter not in _cutters:
        _cutters.append(cutter)


def _cut(sids: list[str]) -> None:
    if sids:
        for cutter in _cutters:
            cutter(sids)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# Web sessions ---------------------------------------------------------------------------------


def start(user: User, *, remember: bool, user_agent: str = "") -> str:
    """A new session for ``user`` (committed); sets ``user.login_key`` for Flask-Login."""
    key = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = (current_app.config["REMEMBER_COOKIE_DURATION"] if remember
                else current_app.config["WEB_SESSION_LIFETIME"])
    row = WebSession(user_id=user.id, key_hash=_hash(key), remember=remember,
                     user_agent=user_agent[:200], created_at=now, last_seen_at=now,
                     expires_at=now + lifetime)
    db.session.add(row)
    db.session.commit()
    user.login_key = key
    g.web_session = row
    return key


# the session and its account in one statement: every signed-in page asks (built once)
_SESSION_ROW = (select(WebSession, User).join(User, User.id == WebSession.user_id)
                .where(WebSession.key_hash == bindparam("key_hash")))


def load(key: str) -> User | None:
    """The user a session key signs in, or None when the session ended, expired or never was."""
    found = db.session.execute(_SESSION_ROW, {"key_hash": _hash(key)}).first()
    now = utcnow()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or row.expires_at <= now or not can_sign_in(user):
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
        db.session.commit()
    user.login_key = key
    g.web_session = row
    return user


def can_sign_in(user: User) -> bool:
    """Whether the account may be used at all (an erased or suspended one may not)."""
    return user.erased_at is None and user.suspended_at is None


def current() -> WebSession | None:
    """The web session of this request, if it was signed in by one."""
    return g.get("web_session")


def rotate(user: User) -> str | None:
    """A remember-me cookie restored the session: replace it with a new key (the old one is
    revoked), so the cookie that was used is good no more. None when there is nothing to
    rotate."""
    old = current()
    if old is None or not old.remember:
        return None
    old.revoked_at = utcnow()
    sids = _drop_connections(LiveConnection.web_session_id == old.id)
    key = start(user, remember=True, user_agent=old.user_agent)  # commits the revocation too
    _cut(sids)
    return key


def end(row: WebSession) -> None:
    """Sign out of one session: the row is revoked and its live connections cut."""
    end_where(WebSession.id == row.id)


def end_all(user: User, *, keep: WebSession | None = None) -> int:
    """Sign out everywhere (but ``keep``, when given); how many sessions ended."""
    condition = WebSession.user_id == user.id
    if keep is not None:
        condition = condition & (WebSession.id != keep.id)
    return end_where(condition)


def end_where(condition: object) -> int:
    ids = list(db.session.scalars(select(WebSession.id).where(
        condition, WebSession.revoked_at.is_(None))))
    if ids:
        db.session.execute(update(WebSession).where(WebSession.id.in_(ids))
                           .values(revoked_at=utcnow()))
    sids = _drop_connections(LiveConnection.web_session_id.in_(ids)) if ids else []
    db.session.commit()
    _cut(sids)
    return len(ids)


def active(user: User) -> list[WebSession]:
    """The user's sessions that still sign someone in, the most recently seen first."""
    return list(db.session.scalars(
        select(WebSession).where(WebSession.user_id == user.id,
                                 WebSession.revoked_at.is_(None),
                                 WebSession.expires_at > utcnow())
        .order_by(WebSession.last_seen_at.desc(), WebSession.id.desc())))


def end_one(user: User, session_id: int) -> bool:
    """End one of the user's own sessions by id; False when it is not theirs (or not active)."""
    return bool(end_where((WebSession.id == session_id) & (WebSession.user_id == user.id)))


# Live connections -----------------------------------------------------------------------------


def stale_before() -> object:
    return utcnow() - timedelta(seconds=3 * current_app.config["LIVE_HEARTBEAT_SECONDS"])


def connected(sid: str, user: User, *, web_session_id: int | None = None,
              api_token_id: int | None = None) -> None:
    """Record a new connection; refuse it when the user already has the most allowed. The
    user's row is locked first, so racing connects are counted one after another."""
    cap = current_app.config["LIVE_CONNECTIONS_PER_USER"]
    db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
    db.session.execute(delete(LiveConnection).where(LiveConnection.user_id == user.id,
                                                    LiveConnection.connected_at < stale_before()))
    count = db.session.scalar(select(func.count()).select_from(LiveConnection)
                              .where(LiveConnection.user_id == user.id)) or 0
    if count >= cap:
        db.session.rollback()
        raise TooManyConnections(f"You have {cap} live connections open already; close one.")
    db.session.add(LiveConnection(sid=sid, user_id=user.id, web_session_id=web_session_id,
                                  api_token_id=api_token_id))
    db.session.commit()


def still_connected(sid: str) -> bool:
    """Whether the connection is still allowed (not cut since it connected)."""
    return db.session.get(LiveConnection, sid) is not None


def disconnected(sid: str) -> None:
    db.session.execute(delete(LiveConnection).where(LiveConnection.sid == sid))
    db.session.commit()


def heartbeat(sids: Iterable[str]) -> None:
    """The process holding these connections is alive: keep their rows from going stale.
    (``connected_at`` doubles as the heartbeat: it is only compared with ``stale_before``.)"""
    sids = list(sids)
    if sids:
        db.session.execute(update(LiveConnection).where(LiveConnection.sid.in_(sids))
                           .values(connected_at=utcnow()))
        db.session.commit()


def cut_token(token_id: int) -> list[str]:
    """Delete the connections a token authenticated (before the token row goes); their sids,
    for ``cut`` once the caller has committed."""
    return _drop_connections(LiveConnection.api_token_id == token_id)


def cut(sids: list[str]) -> None:
    """Disconnect these (already deleted, committed) connections."""
    _cut(sids)


def end_user(user_id: int) -> list[str]:
    """End every session and connection of an account (erasure, suspension) in the caller's
    transaction; the sids, for ``cut`` once the caller has committed."""
    db.session.execute(update(WebSession).where(WebSession.user_id == user_id,
                                                WebSession.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))
    return _drop_connections(LiveConnection.user_id == user_id)


def _drop_connections(condition: object) -> list[str]:
    sids = list(db.session.scalars(select(LiveConnection.sid).where(condition)))
    if sids:
        db.session.execute(delete(LiveConnection).where(LiveConnection.sid.in_(sids)))
    return sids
