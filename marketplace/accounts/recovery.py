"""Single-use links mailed to a person: verify an address, reset a password, confirm a new
address. The link carries 256 random bits; only their SHA-256 is stored (``AccountToken``), so
the table is worth nothing to whoever reads it. A link works once, until it expires; issuing
a new one of a kind retires the person's earlier ones of that kind."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from marketplace.accounts.auth import hash_token
from marketplace.accounts.models import AccountToken, TokenKind, User
from marketplace.db_types import utcnow
from marketplace.errors import Invalid
from marketplace.extensions import db


def lifetime(kind: TokenKind) -> timedelta:
    config = current_app.config
    if kind == TokenKind.RESET:
        return timedelta(minutes=float(config["PASSWORD_RESET_MINUTES"]))
    return timedelta(hours=float(config["VERIFY_EMAIL_HOURS"]))


def issue(user: User, kind: TokenKind, *, new_email: str | None = None) -> str:
    """A new link token for ``user`` in the caller's transaction; the raw value, for the mail."""
    retire(user.id, kind)
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(AccountToken(kind=kind.value, user_id=user.id, token_hash=hash_token(raw),
                                new_email=new_email, created_at=now,
                                expires_at=now + lifetime(kind)))
    return raw


def retire(user_id: int, *kinds: TokenKind) -> None:
    """The user's unused links of these kinds work no more (caller's transaction)."""
    db.session.execute(update(AccountToken).where(
        AccountToken.user_id == user_id, AccountToken.kind.in_([k.value for k in kinds]),
        AccountToken.used_at.is_(None)).values(used_at=utcnow()))


def _refuse(message: str) -> Invalid:
    return Invalid(message, {"token": [message]})


def redeem(kind: TokenKind, raw: str) -> AccountToken:
    """Use the link ``raw`` of ``kind`` (caller's transaction; the caller commits). Refused with
    the field ``token`` named when it is unknown, of another kind, used or expired. Using it is
    one conditional UPDATE, so two racing requests cannot both use it."""
    row = db.session.scalar(select(AccountToken).where(
        AccountToken.token_hash == hash_token(raw)))
    if row is None or row.kind != kind.value:
        raise _refuse("This link is not valid. Check that you copied all of it, or ask for a "
                      "new one.")
    if row.used_at is not None:
        raise _refuse("This link has been used already (each works once). Ask for a new one.")
    now = utcnow()
    if row.expires_at <= now:
        raise _refuse("This link has expired. Ask for a new one.")
    used = db.session.execute(update(AccountToken).where(
        AccountToken.id == row.id, AccountToken.used_at.is_(None)).values(used_at=now))
    if not used.rowcount:  # type: ignore[attr-defined]
        db.session.rollback()
        raise _refuse("This link has been used already (each works once). Ask for a new one.")
    return row
