from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db_types import IDS_NEVER_REUSED, Hideable, UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.geo import grid_cell_centre, km_cos, unit_vector
from marketplace.providers.models import Category
from marketplace.signals.models import NeedTag


class Audience(enum.StrEnum):
    """Who a need is posted to: the providers in reach (matching), or the customer's
    favourite providers only, wherever they are (the rows of ``need_recipients``)."""

    NEARBY = "nearby"
    FAVOURITES = "favourites"


class NeedStatus(enum.StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


def _from_place(axis: str, *, cell: bool = False) -> Any:
    """A column default computed from the row's own lat/lon (for every insert, ORM or not)."""

    def default(context: Any) -> float:
        params = context.get_current_parameters()
        lat, lon = params["lat"], params["lon"]
        if cell:
            lat, lon = grid_cell_centre(lat, lon)
        return float(getattr(unit_vector(lat, lon), axis))

    return default


def _reach_cos(context: Any) -> float:
    return km_cos(context.get_current_parameters()["radius_km"])


class Need(Hideable, db.Model):
    """What a customer asked for, where, for how much. Its status changes only in services."""

    __tablename__ = "needs"
    __table_args__ = (
        CheckConstraint("lat >= -90 AND lat <= 90", name="lat_range"),
        CheckConstraint("lon >= -180 AND lon <= 180", name="lon_range"),
        CheckConstraint("budget_amount > 0", name="budget_positive"),
        CheckConstraint("offer_count >= 0", name="offer_count_nonnegative"),
        CheckConstraint("max_offers IS NULL OR max_offers >= 1", name="max_offers_positive"),
        Index("ix_needs_status_expires_at", "status", "expires_at"),
        # The provider feed's box query: open needs of a category near a point.
        Index("ix_needs_feed", "status", "category_id", "lat_row", "lon"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    lat_row: Mapped[int] = mapped_column(Integer)  # geo.lat_row(lat), for the feed's index
    # The place as SQL can compare it without trigonometry (geo.unit_vector): the true point,
    # its grid cell's centre (what the feed's rule and bands use: decisions are on cells), and
    # the cosine of its reach — so the feed filters and ranks by band in SQL and pages with
    # LIMIT. Needs never move; set once, on insert.
    ux: Mapped[float] = mapped_column(Float, default=_from_place("x"))
    uy: Mapped[float] = mapped_column(Float, default=_from_place("y"))
    uz: Mapped[float] = mapped_column(Float, default=_from_place("z"))
    cell_ux: Mapped[float] = mapped_column(Float, default=_from_place("x", cell=True))
    cell_uy: Mapped[float] = mapped_column(Float, default=_from_place("y", cell=True))
    cell_uz: Mapped[float] = mapped_column(Float, default=_from_place("z", cell=True))
    reach_cos: Mapped[float] = mapped_column(Float, default=_reach_cos)
    place: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    radius_km: Mapped[float] = mapped_column(Float)
    budget_amount: Mapped[int] = mapped_column(BigInteger)
    budget_currency: Mapped[str] = mapped_column(String(3))
    needed_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    max_offers: Mapped[int | None] = mapped_column(Integer)
    # Counted by conditional UPDATEs so a cap holds under concurrency (see offers.services).
    offer_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[NeedStatus] = mapped_column(
        Enum(NeedStatus, native_enum=False, length=12, values_callable=lambda e: [m.value for m in e],
             validate_strings=True),
        default=NeedStatus.OPEN,
    )
    accepted_offer_id: Mapped[int | None] = mapped_column(
        ForeignKey("offers.id", use_alter=True, ondelete="SET NULL")
    )
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    audience: Mapped[Audience] = mapped_column(
        Enum(Audience, native_enum=False, length=12, values_callable=lambda e: [m.value for m in e],
             validate_strings=True),
        default=Audience.NEARBY, server_default=Audience.NEARBY.value,
    )
    # The unguessable part of the public share link (/s/<token>): sharing is the customer's act.
    share_token: Mapped[str] = mapped_column(String(24), unique=True,
                                             default=lambda: secrets.token_urlsafe(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the customer last edited its text, budget or dates (the page says "edited").
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    customer: Mapped[User | None] = relationship(foreign_keys=[customer_id])
    category: Mapped[Category] = relationship()
    # Its ?intent, #topic and @mention signals (signals.parser), in the order written.
    tags: Mapped[list[NeedTag]] = relationship(order_by=NeedTag.position, lazy="selectin",
                                               viewonly=True)

    def tags_of(self, kind: str) -> list[str]:
        return [t.tag for t in self.tags if t.kind == kind]


class NeedRecipient(db.Model):
    """A provider a need was sent to directly (``Audience.FAVOURITES``), written when it is
    posted: visibility and the feed read these rows, so "sent to you" is decided in the
    database. Nobody but the customer can list a need's recipients."""

    __tablename__ = "need_recipients"

    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"),
                                         primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # Why it was sent there: a favourite (``Audience.FAVOURITES``), an @mention of the
    # provider's handle, or one of the provider's tag subscriptions (signals).
    via: Mapped[str] = mapped_column(String(12), default="favourite", server_default="favourite")
