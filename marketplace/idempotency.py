"""``Idempotency-Key`` on creating POSTs: same key + same body replays the first response;
same key + a different body is refused with 422.

The key is reserved in its own committed row before the work runs (a unique constraint makes
two racing requests with one key serialise), and the response is stored after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import Response, g, request
from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db_types import UTCDateTime, utcnow
from marketplace.errors import Conflict, Invalid
from marketplace.extensions import db

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)


class IdempotencyKey(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


def _request_hash() -> str:
    raw = request.get_data(cache=True)
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(request.method.encode() + request.path.encode() + b"\0" + canonical
                          ).hexdigest()


def _replay(row: IdempotencyKey, digest: str) -> Response:
    if row.request_hash != digest:
        raise Invalid(
            "This Idempotency-Key was already used with a different request.",
            {HEADER: ["Already used with a different request body or path."]},
        )
    if row.status_code is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    response = Response(row.response_body, status=row.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _reserve(scope: str, key: str, digest: str) -> IdempotencyKey | Response:
    existing = db.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    )
    if existing is not None:
        return _replay(existing, digest)
    user = getattr(g, "user", None)
    row = IdempotencyKey(scope=scope, key=key, request_hash=digest,
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
        user = getattr(g, "user", None)
        scope = f"user:{user.id}" if user else "anonymous"
        reserved = _reserve(scope, key, _request_hash())
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
        row.response_body = response.get_data(as_text=True)
        db.session.commit()
        return response

    return wrapper


def purge_expired(now: datetime | None = None) -> int:
    """Forget keys older than a day (run by the periodic maintenance command)."""
    cutoff = (now or utcnow()) - KEEP_FOR
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
