"""Bearer-token authentication for the JSON API (web pages use Flask-Login sessions)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import g, request
from sqlalchemy import select

from marketplace.accounts.models import ApiToken, User
from marketplace.db_types import utcnow
from marketplace.errors import Unauthorized
from marketplace.extensions import db

TOKEN_PREFIX = "mkt_"
_TOUCH_EVERY = timedelta(minutes=5)


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is enough (no password stretching needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def user_for_token(token: str) -> User | None:
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        row.last_used_at = now
        db.session.commit()
    return row.user


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def auth_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Require ``Authorization: Bearer <token>``; the user is then ``g.user``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        user = user_for_token(token) if token else None
        if user is None:
            raise Unauthorized(
                "Send a valid API token as 'Authorization: Bearer <token>'."
                if token is None else "That API token is not valid (revoked or mistyped)."
            )
        g.user = user
        return view(*args, **kwargs)

    return wrapper


def optional_auth(view: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``auth_required`` but anonymous callers pass with ``g.user = None``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        user = user_for_token(token) if token else None
        if token is not None and user is None:
            raise Unauthorized("That API token is not valid (revoked or mistyped).")
        g.user = user
        return view(*args, **kwargs)

    return wrapper


def current_user_required() -> User:
    user: User | None = g.get("user")
    if user is None:
        raise Unauthorized("Sign in first.")
    return user
