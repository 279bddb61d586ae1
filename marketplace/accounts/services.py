"""Accounts: sign-up, password checks, personal API tokens."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from marketplace.accounts import sessions
from marketplace.accounts.auth import TOKEN_PREFIX, hash_token
from marketplace.accounts.models import ApiToken, User
from marketplace.errors import Conflict, Forbidden, NotFound, Unauthorized
from marketplace.extensions import db

MAX_TOKENS_PER_USER = 50
T = TypeVar("T")
_DUMMY_HASH: str | None = None


def _hasher() -> PasswordHasher:
    """argon2id with the library's recommended parameters (cheap ones only when testing)."""
    if current_app.config.get("PASSWORD_HASH_FAST"):
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


def off_the_loop(work: Callable[..., T], *args: Any) -> T:
    """Run CPU-bound ``work`` (argon2) where it cannot stall the server: under gevent, in the
    hub's thread pool -- argon2-cffi releases the GIL while it hashes, so other greenlets keep
    serving -- and inline everywhere else (tests, CLI, threading mode). PASSWORD_HASH_INLINE
    keeps it on the loop (the baseline of bench/signin.py)."""
    if (current_app.config.get("SOCKETIO_ASYNC_MODE") == "gevent"
            and not current_app.config.get("PASSWORD_HASH_INLINE")):
        import gevent

        return gevent.get_hub().threadpool.apply(work, args)
    return work(*args)


def hash_password(password: str) -> str:
    return off_the_loop(_hasher().hash, password)


def _verifies(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return True


def verify_password(user: User | None, password: str) -> bool:
    """Constant-ish time whether or not the user exists, so timing does not reveal accounts."""
    global _DUMMY_HASH
    hasher = _hasher()
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_hex(8))
        off_the_loop(_verifies, hasher, _DUMMY_HASH, password)
        return False
    if not off_the_loop(_verifies, hasher, user.password_hash, password):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return True


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def register(email: str, password: str, name: str, phone: str | None = None) -> User:
    email = email.strip().lower()
    if find_by_email(email) is not None:
        raise Conflict("An account with that email already exists.",
                       {"email": ["An account with that email already exists."]})
    user = User(email=email, name=name, phone=phone or None, password_hash=hash_password(password))
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("An account with that email already exists.",
                       {"email": ["An account with that email already exists."]}) from None
    return user


def authenticate(email: str, password: str) -> User:
    user = find_by_email(email)
    if not verify_password(user, password):
        raise Unauthorized("Email or password is wrong.")
    assert user is not None
    if user.suspended_at is not None:  # told only to whoever knows the password
        raise Forbidden("This account is suspended.")
    return user


def update_profile(user: User, changes: dict[str, object]) -> User:
    for field in ("name", "phone"):
        if field in changes:
            setattr(user, field, changes[field] or (None if field == "phone" else changes[field]))
    db.session.commit()
    return user


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Make a token; the plain value is returned once and never stored."""
    count = db.session.scalar(select(func.count()).where(ApiToken.user_id == user.id)) or 0
    if count >= MAX_TOKENS_PER_USER:
        raise Conflict(f"You already have {MAX_TOKENS_PER_USER} tokens; revoke one first.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(raw),
                     prefix=raw[: len(TOKEN_PREFIX) + 6])
    db.session.add(token)
    db.session.commit()
    return token, raw


def list_tokens(user: User) -> list[ApiToken]:
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    ))


def revoke_token(user: User, token_id: int) -> None:
    """Delete the token; live connections it authenticated are cut at once."""
    sids = sessions.cut_token(token_id) if db.session.get(ApiToken, token_id) else []
    result = db.session.execute(
        delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user.id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        db.session.rollback()
        raise NotFound("You have no token with that id.")
    db.session.commit()
    sessions.cut(sids)
