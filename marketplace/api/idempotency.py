"""``Idempotency-Key`` on creating POSTs: same key + same body replays the first response;
same key + a different body is refused with 422.

A key is first *reserved* in its own committed row (a unique constraint makes two racing
requests with one key serialise): the reservation is a lease of ``IDEMPOTENCY_LEASE_SECONDS``,
longer than any request runs. While it holds, a retry is told to wait (409 with Retry-After);
once it has expired with no response stored (the process handling it died), the next retry
takes the key over with one conditional UPDATE -- the database lets exactly one of several
racing retries win -- and runs the request again.

The view's work and its stored response commit together, in ONE transaction: while the view
runs, the session's ``commit()`` only flushes (``one_transaction``), and the real commit comes
after the response is written to the key's row. So a
process that dies anywhere before that commit leaves nothing of the request behind (the retry
does it once), and one that dies after it leaves the response to replay -- never the created
thing without its response, which a retry would create a second time.

Stored rows hold no secrets in the clear: a response can carry one (a new API token), so it is
encrypted with a key derived from SECRET_KEY and the client's Idempotency-Key, which is itself
kept only as a keyed hash; the request fingerprint is a keyed hash too (bodies hold passwords).
Unauthenticated requests are scoped by path and the email they name, so two people signing in
with the same key do not collide.

``FAULT_INJECT`` (tests only, tests/test_faults_idempotency.py): a server started with it set to
one of ``FAULT_POINTS`` kills itself (SIGKILL) when a request with a key reaches that point.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from cryptography.fernet import Fernet
from flask import Response, current_app, g, request
from sqlalchemy import (
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    or_,
    select,
    update,
)
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
    # The lease of the request running under this key: until then a retry is told to wait
    # (409 + Retry-After); after it, with no response stored, a retry takes the key over. None
    # (rows from before leases): expired. ``attempt`` counts takeovers; only the holder of the
    # current attempt may store the response.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


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


def _replay(row: IdempotencyKey, digest: str, key: str, now: datetime) -> Response | None:
    """The stored response of ``row``; a 409 while its lease holds; None when the lease has
    expired with nothing stored (the key may be taken over)."""
    if row.request_hash != digest:
        raise Invalid(
            "This Idempotency-Key was already used with a different request.",
            {HEADER: ["Already used with a different request body or path."]},
        )
    if row.status_code is None:
        if row.lease_expires_at is None or row.lease_expires_at <= now:
            return None
        wait = max(1, math.ceil((row.lease_expires_at - now).total_seconds()))
        raise Conflict(f"A request with this Idempotency-Key is still being processed; if it "
                       f"does not finish, retry after {wait} s.", headers={"Retry-After": str(wait)})
    body = _cipher(key).decrypt((row.response_body or "").encode())
    response = Response(body, status=row.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def stored_key(key: str) -> str:
    """How a client's Idempotency-Key is kept: a keyed hash, never the key itself."""
    return _keyed("key", key.encode()).hex()


@dataclass(frozen=True)
class Lease:
    """This request holds the key's row ``row_id`` as its ``attempt``-th holder."""

    row_id: int
    attempt: int


def lease_length() -> timedelta:
    return timedelta(seconds=float(current_app.config["IDEMPOTENCY_LEASE_SECONDS"]))


def _reserve(scope: str, key: str, digest: str, now: datetime | None = None) -> Lease | Response:
    """Reserve the key (a new row) or take over its expired lease, committed before the work
    runs; or answer for it (replay, 409, 422). Every step is settled by the database: the
    unique constraint for two first requests, the conditional UPDATE for two takeovers."""
    stored = stored_key(key)
    fixed = now
    for _ in range(10):  # each pass sees what a racer changed; it can only move forward
        now = fixed or utcnow()
        existing = db.session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.scope == scope,
                                         IdempotencyKey.key == stored)
        )
        if existing is None:
            user = getattr(g, "user", None)
            row = IdempotencyKey(scope=scope, key=stored, request_hash=digest,
                                 user_id=user.id if user else None,
                                 lease_expires_at=now + lease_length(), attempt=1)
            db.session.add(row)
            try:
                db.session.flush()
                row_id = row.id
                db.session.commit()
            except IntegrityError:  # a racer with the same key reserved it first
                db.session.rollback()
                continue
            return Lease(row_id, 1)
        answer = _replay(existing, digest, key, now)
        if answer is not None:
            return answer
        row_id, attempt = existing.id, existing.attempt
        taken = db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id, IdempotencyKey.attempt == attempt,
                   IdempotencyKey.status_code.is_(None),
                   or_(IdempotencyKey.lease_expires_at.is_(None),
                       IdempotencyKey.lease_expires_at <= now))
            .values(attempt=attempt + 1, lease_expires_at=now + lease_length())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return Lease(row_id, attempt + 1)
        # another retry took it over (or the first finished): look again
    raise Conflict("A request with this Idempotency-Key is still being processed.")


def _store(lease: Lease, key: str, response: Response) -> None:
    """Write the response into the key's row, in the view's transaction; refused when this
    request's lease was taken over meanwhile (it ran longer than the lease), which then undoes
    this request's work."""
    stored = db.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == lease.row_id, IdempotencyKey.attempt == lease.attempt,
               IdempotencyKey.status_code.is_(None))
        .values(status_code=response.status_code,
                response_body=_cipher(key).encrypt(response.get_data()).decode())
        .execution_options(synchronize_session=False)
    )
    if stored.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("This request took longer than its Idempotency-Key's lease and a retry "
                       "took the key over; nothing was done here.")


def _release(lease: Lease) -> None:
    """The request failed: forget the key (failures are not remembered), unless a retry has
    taken it over meanwhile."""
    db.session.rollback()
    db.session.execute(delete(IdempotencyKey).where(
        IdempotencyKey.id == lease.row_id, IdempotencyKey.attempt == lease.attempt,
        IdempotencyKey.status_code.is_(None)))
    db.session.commit()


@contextmanager
def one_transaction() -> Iterator[None]:
    """Run the block as one database transaction, committed at its end (rolled back if it
    raises), although the code inside calls ``db.session.commit()`` as usual: inside, a commit
    only flushes (and expires the loaded objects, as a commit does), so the work is written but
    not durable, and the notifications it queued are stored and sent with the real commit
    (marketplace.notifications.outbox). A ``rollback()`` inside rolls back everything the block
    did so far: in the views this wraps, every rollback is followed by an error or by reads
    only. (Savepoints would keep the work of earlier commits, but pysqlite's SAVEPOINT before
    the first write starts and commits a transaction of its own.)"""
    session = db.session()

    def commit() -> None:
        session.flush()
        if session.expire_on_commit:
            session.expire_all()
        fault("idempotency.after_work")

    session.commit = commit  # type: ignore[method-assign]
    try:
        yield
    except BaseException:
        del session.commit
        session.rollback()
        raise
    del session.commit
    session.commit()


#: Where a request with an Idempotency-Key may be made to die (``FAULT_INJECT``, tests only):
#: before the key is reserved; after (its reservation committed); after the view's own commit
#: (its work done, the response not stored yet; nothing of it is durable); after the work and
#: the response committed together, before the response is sent.
FAULT_POINTS = ("idempotency.before_reserve", "idempotency.after_reserve",
                "idempotency.after_work", "idempotency.after_store")


def fault(point: str) -> None:
    """Test-only fault injection: SIGKILL this process at ``point`` when the FAULT_INJECT
    setting names it. Never set in production (docs/deploy.md)."""
    if current_app.config.get("FAULT_INJECT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


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
        fault("idempotency.before_reserve")
        lease = _reserve(_scope(), key, _request_hash())
        if isinstance(lease, Response):
            return lease
        fault("idempotency.after_reserve")
        try:
            with one_transaction():
                response = view(*args, **kwargs)
                _store(lease, key, response)
        except BaseException:
            _release(lease)
            raise
        fault("idempotency.after_store")
        return response

    return wrapper


def purge_expired(now: datetime | None = None) -> int:
    """Forget keys older than a day (run by the periodic maintenance command)."""
    cutoff = (now or utcnow()) - KEEP_FOR
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
    db.session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
