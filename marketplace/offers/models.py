from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db_types import IDS_NEVER_REUSED, Hideable, UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.needs.models import Need
from marketplace.providers.models import Provider


class OfferStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class DeclineReason(enum.StrEnum):
    """Why a declined offer was declined."""

    OTHER_ACCEPTED = "other_accepted"
    NEED_CLOSED = "need_closed"  # the need was cancelled or expired
    BLOCKED = "blocked"  # the customer blocked the provider


class Offer(Hideable, db.Model):
    """A provider's answer to a need. One per provider per need, by constraint."""

    __tablename__ = "offers"
    __table_args__ = (
        UniqueConstraint("need_id", "provider_id", name="uq_offers_need_provider"),
        CheckConstraint("price_amount > 0", name="price_positive"),
        # The database itself refuses a second accepted offer on one need.
        Index(
            "uq_offers_one_accepted_per_need",
            "need_id",
            unique=True,
            sqlite_where=text("status = 'accepted'"),
            postgresql_where=text("status = 'accepted'"),
        ),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    price_amount: Mapped[int] = mapped_column(BigInteger)
    price_currency: Mapped[str] = mapped_column(String(3))
    message: Mapped[str] = mapped_column(Text, default="")
    available_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped by every revision; accepting with the revision the customer saw guarantees they
    # accept the terms they read, not ones changed a moment earlier.
    revision: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    status: Mapped[OfferStatus] = mapped_column(
        Enum(OfferStatus, native_enum=False, length=12,
             values_callable=lambda e: [m.value for m in e], validate_strings=True),
        default=OfferStatus.PENDING,
    )
    decline_reason: Mapped[DeclineReason | None] = mapped_column(
        Enum(DeclineReason, native_enum=False, length=20,
             values_callable=lambda e: [m.value for m in e], validate_strings=True)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    need: Mapped[Need] = relationship(foreign_keys=[need_id])
    provider: Mapped[Provider] = relationship()
