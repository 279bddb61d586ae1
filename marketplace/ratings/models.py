from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db_types import IDS_NEVER_REUSED, Hideable, UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.needs.models import Need
from marketplace.providers.models import Provider

SUB_SCORES = ("quality", "punctuality", "communication")
NEAR_TILE_DEG = 0.1  # "near": the job's tile of this size or one of the eight around it


def near_tile(lat: float, lon: float) -> tuple[int, int]:
    """The fixed ``NEAR_TILE_DEG`` tile (row, column) of a point: a rating keeps its job's."""
    return math.floor(lat / NEAR_TILE_DEG), math.floor(lon / NEAR_TILE_DEG)


class Rating(Hideable, db.Model):
    """A customer's verdict on a completed job. One per need; the customer may later be erased."""

    __tablename__ = "ratings"
    __table_args__ = (
        CheckConstraint("stars BETWEEN 1 AND 5", name="stars_range"),
        *(
            CheckConstraint(f"{name} IS NULL OR {name} BETWEEN 1 AND 5", name=f"{name}_range")
            for name in SUB_SCORES
        ),
        # "People like you" (offers.reputation.like_you) reads only these two, never the rows
        # (covering): a viewer's ratings, and who rated a provider how, and where the job was.
        Index("ix_ratings_customer_provider", "customer_id", "provider_id", "stars", "id",
              "hidden_at"),
        Index("ix_ratings_provider_customer", "provider_id", "customer_id", "stars", "id",
              "need_id", "hidden_at", "near_row", "near_col"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), unique=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    stars: Mapped[int] = mapped_column(SmallInteger)
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    punctuality: Mapped[int | None] = mapped_column(SmallInteger)
    communication: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    reply: Mapped[str | None] = mapped_column(String(2000))
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: the job's ``near_tile`` (its need's point), so "near you" reads no need; none once the
    #: customer is erased
    near_row: Mapped[int | None] = mapped_column(Integer)
    near_col: Mapped[int | None] = mapped_column(Integer)

    need: Mapped[Need] = relationship()
    provider: Mapped[Provider] = relationship()
    customer: Mapped[User | None] = relationship()
