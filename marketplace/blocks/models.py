"""The customer's own decisions about providers: blocking one (a blocked provider is never
matched to, nor sees, their needs) and their private record of one ("my providers": a note,
would I hire them again, a favourite). Both rows belong to the customer."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db_types import UTCDateTime, utcnow
from marketplace.extensions import db

NOTE_MAX = 2000


class Block(db.Model):
    """A customer's decision that one provider never hears from them again."""

    __tablename__ = "blocks"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Contact(db.Model):
    """A customer's private record of a provider they dealt with: never shown to the provider
    or anyone else. Written only through ``contacts.services.update``, which checks the
    dealing; a favourite receives the needs the customer sends to their favourites."""

    __tablename__ = "provider_contacts"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    note: Mapped[str] = mapped_column(Text, default="")
    would_hire_again: Mapped[bool | None] = mapped_column(Boolean)
    favourite: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
