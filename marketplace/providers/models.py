from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Column, Float, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db_types import UTCDateTime, utcnow
from marketplace.extensions import db

MAX_RADIUS_KM = 100
MIN_RADIUS_KM = 1

provider_categories = Table(
    "provider_categories",
    db.metadata,
    Column("provider_id", Integer, ForeignKey("providers.id", ondelete="CASCADE"),
           primary_key=True),
    Column("category_id", Integer, ForeignKey("categories.id", ondelete="CASCADE"),
           primary_key=True, index=True),
)


class Category(db.Model):
    """The fixed list of things people ask for; seeded by a migration."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))


class Provider(db.Model):
    """A user's provider side: where they work from, how far they go, what they do."""

    __tablename__ = "providers"
    __table_args__ = (
        CheckConstraint(f"radius_km >= {MIN_RADIUS_KM} AND radius_km <= {MAX_RADIUS_KM}",
                        name="radius_range"),
        CheckConstraint("base_lat >= -90 AND base_lat <= 90", name="lat_range"),
        CheckConstraint("base_lon >= -180 AND base_lon <= 180", name="lon_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    handle: Mapped[str] = mapped_column(String(30), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    bio: Mapped[str] = mapped_column(String(2000), default="")
    base_lat: Mapped[float] = mapped_column(Float)
    base_lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="provider")
    categories: Mapped[list[Category]] = relationship(
        secondary=provider_categories, order_by=Category.slug
    )
