"""``Idempotency-Key`` on creating POSTs: same key + same body replays the first response;
same key + a different body is refused with 422.

The key is reserved in its own committed row before the work runs (a unique constraint makes
two racing requests with one key serialise), and the response is stored after it.

Stored rows hold no secrets in the clear: a response can carry one (a new API token), so it is
encrypted with a key derived from SECRET_KEY and the client's Idempotency-Key, which is itself
kept only as a keyed hash; the request fingerprint is a keyed hash too (bodies hold passwords).
Unauthenticated requests are scoped by path and the email they name, so two people signing in
with the same key do not collide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from cryptography.fernet import Fernet
from flask import Response, current_app, g, request
from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db_types import IDS_NEVER_REUSED, UTCDateTime, utcnow
from marketplace.errors import Conflict, Invalid
from marketplace.extensions import db

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)


class IdempotencyKey(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
                      IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


def _keyed(purpose: str, data: bytes) -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, purpose.encode() + b"\0" + data, hashlib.sha256).digest()


def _body() -> tuple[bytes, Any]:
    raw = request.get_data(cache=True)
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return raw, None
    return json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode(), parsed


def _request_hash() -> str:
    canonical, _parsed = _body()
    return _keyed("request", request.method.encode() + request.path.encode() + b"\0"
                  + canonical).hex()


def _scope() -> str:
    user = getattr(g, "user", None)
    if user is not None:
        return f"user:{user.id}"
    _canonical, parsed = _body()
    email = parsed.get("email") if isinstance(parsed, dict) else None
    who = email.strip().lower() if isinstance(email, str) else ""
    return "anon:" + _keyed("scope", f"{request.path}\0{who}".encode()).hex()[:32]


def _cipher(key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_keyed("response", key.encode())))


def _replay(row: IdempotencyKey, digest: str, key: str) -> Response:
    if row.request_hash != digest:
        raise Invalid(
            "This Idempotency-Key was already used with a different request.",
            {HEADER: ["Already used with a different request body or path."]},
        )
    if row.status_code is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    body = _cipher(key).decrypt((row.response_body or "").encode())
    response = Response(body, status=row.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def stored_key(key: str) -> str:
    """How a client's Idempotency-Key is kept: a keyed hash, never the key itself."""
    return _keyed("key", key.encode()).hex()


def _reserve(scope: str, key: str, digest: str) -> IdempotencyKey | Response:
    stored = stored_key(key)
    existing = db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope,
                                     IdempotencyKey.key == stored)
    )
    if existing is not None:
        return _replay(existing, digest, key)
    user = getattr(g, "user", None)
    row = IdempotencyKey(scope=scope, key=stored, request_hash=digest,
                         user_id=user.id if user else None)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _reserve(scope, key, digest)
    return row


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a creating POST view (inside the auth decorator, outside argument parsing)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise Invalid("The Idempotency-Key header must be 1-255 printable characters.",
                          {HEADER: ["Must be 1-255 printable characters."]})
        reserved = _reserve(_scope(), key, _request_hash())
        if isinstance(reserved, Response):
            return reserved
        row_id = reserved.id
        try:
            response = view(*args, **kwargs)
        except BaseException:
            db.session.rollback()
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))
            db.session.commit()
            raise
        row = db.session.get(IdempotencyKey, row_id)
        assert row is not None
        row.status_code = response.status_code
        row.response_body = _cipher(key).encrypt(response.get_data()).decode()
        db.session.commit()
        return response

    return wrapper


def purge_expired(now: datetime | None = None) -> int:
    """Forget keys older than a day (run by the periodic maintenance command)."""
    cutoff = (now or utcnow()) - KEEP_FOR
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
