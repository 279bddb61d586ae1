from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db_types import IDS_NEVER_REUSED, UTCDateTime, utcnow
from marketplace.extensions import db


class User(UserMixin, db.Model):
    """One person; the same account can post needs and, with a provider profile, make offers."""

    __tablename__ = "users"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when the person erased their account (privacy.erase): the row stays so what others
    # hold (ratings, threads, jobs) keeps its shape, with every personal field overwritten.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Moderation: an admin works the report queue (granted from the CLI, grant-admin); a
    # suspended account signs nobody in and is never matched (moderation/services.py).
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the person followed the link mailed to their address (accounts.recovery). Until
    # then the account works, but its ratings do not count toward anyone's reputation.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the person's browser reported (web/i18n.py): the IANA zone their pages show times
    # in, and their locale (a Babel name, "de_DE") for amounts and dates. None until known.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    # "km" or "mi" as the person chose on the account; None: from their locale (US: miles).
    distance_unit: Mapped[str | None] = mapped_column(String(2))

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    # The web session this object was loaded for (accounts.sessions): Flask-Login keeps
    # ``get_id()`` in the cookie session and in the remember-me cookie, so what it keeps is the
    # session's random key, never the user id -- a cookie is worth what its session row is.
    login_key = None  # type: str | None  (not a column)

    def get_id(self) -> str:
        if self.login_key is None:
            raise RuntimeError("sign in through accounts.sessions.start, which sets login_key")
        return self.login_key

    @property
    def first_name(self) -> str:
        """What people who are not (yet) the customer's chosen provider may call them."""
        if self.erased_at is not None:
            return self.name
        words = self.name.split()
        return words[0] if words else "Customer"


class ApiToken(db.Model):
    """A personal API token. Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="tokens")


class WebSession(db.Model):
    """One sign-in on the web: the cookie session (and its remember-me cookie, if asked for)
    carry a random key whose SHA-256 is kept here. Signing out revokes the row, so a replayed
    cookie is worth nothing; a remember-me sign-in rotates the key each time it is used."""

    __tablename__ = "web_sessions"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LiveConnection(db.Model):
    """An open Socket.IO connection and what authenticated it (a web session or an API token),
    so that ending either cuts the connection at once, on whichever process holds it, and so
    that a user's concurrent connections can be counted."""

    __tablename__ = "live_connections"
    __table_args__ = (Index("ix_live_connections_user_id", "user_id"),)

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    web_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("web_sessions.id", ondelete="CASCADE"), index=True)
    api_token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TokenKind(enum.StrEnum):
    VERIFY = "verify"              # prove the address given at sign-up
    RESET = "reset"                # set a new password without the old one
    CHANGE_EMAIL = "change_email"  # prove a new address before it replaces the old one


class AccountToken(db.Model):
    """A single-use link mailed to the person (accounts.recovery). Only the SHA-256 of the
    random token is stored; the row says what it is for, until when, and when it was used."""

    __tablename__ = "account_tokens"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    new_email: Mapped[str | None] = mapped_column(String(254))  # change_email only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
