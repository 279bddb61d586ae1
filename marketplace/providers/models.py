from __future__ import annotations

import hashlib
import re
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db_types import IDS_NEVER_REUSED, Hideable, UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.signals.parser import SIGIL_OF

HANDLE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,28}[a-z0-9])")  # use with fullmatch
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
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))


class Provider(Hideable, db.Model):
    """A user's provider side: where they work from, how far they go, what they do."""

    __tablename__ = "providers"
    __table_args__ = (
        CheckConstraint(f"radius_km >= {MIN_RADIUS_KM} AND radius_km <= {MAX_RADIUS_KM}",
                        name="radius_range"),
        CheckConstraint("base_lat >= -90 AND base_lat <= 90", name="lat_range"),
        CheckConstraint("base_lon >= -180 AND base_lon <= 180", name="lon_range"),
        IDS_NEVER_REUSED,
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
    # Whether an @mention of the handle sends a need here whatever the distance and category.
    direct_asks: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Erased providers keep their row (ratings and offers point at it), handle "erased-<id>";
    # the old handle is reserved in ErasedHandle.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
    categories: Mapped[list[Category]] = relationship(
        secondary=provider_categories, order_by=Category.slug
    )
    tags: Mapped[list[ProviderTag]] = relationship(
        order_by="(ProviderTag.kind, ProviderTag.tag)", cascade="all, delete-orphan"
    )

    @property
    def subscriptions(self) -> list[str]:
        """The tag subscriptions as written: ``?kayak``, ``#boats``."""
        return [SIGIL_OF[t.kind] + t.tag for t in self.tags]

    @property
    def takes_work(self) -> bool:
        """Whether needs are posted to this provider at all: active, the profile not hidden
        and the account not suspended by moderation."""
        return (self.active and self.hidden_at is None
                and self.user.suspended_at is None)


class ErasedHandle(db.Model):
    """The handle of an erased provider, kept only as its SHA-256: nobody may take it again to
    pass as them, and the handle itself (often a name) is not kept."""

    __tablename__ = "erased_handles"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @staticmethod
    def of(handle: str) -> str:
        return hashlib.sha256(handle.lower().encode()).hexdigest()


class ProviderCoverage(db.Model):
    """Where an active provider works, one row per category they serve: the spatial index.

    Derived from ``Provider`` and rewritten whenever the profile is saved. ``lat``/``lon`` (and
    ``lat_row``) are the centre of the base's grid cell (``geo.grid_cell_centre``), not the base:
    matching decides on cells (``geo.in_reach``). Rows exist only for
    active providers, and the composite index (category, latitude row, longitude, ...) covers
    the matching query, so finding the providers near a need reads a few short index ranges
    instead of scanning providers. Works the same on SQLite and PostgreSQL, no extensions.
    """

    __tablename__ = "provider_coverage"
    __table_args__ = (
        Index("ix_provider_coverage_lookup", "category_id", "lat_row", "lon", "lat", "radius_km",
              "provider_id", "user_id"),
    )

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[int] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lat_row: Mapped[int] = mapped_column(Integer)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)


class ProviderTag(db.Model):
    """An intent or topic tag a provider subscribes to (``?kayak``, ``#boats``; normalised as
    ``signals.parser.normalise``): a need with that signal is posted to them as if they served
    its category, under the same distance rule."""

    __tablename__ = "provider_tags"

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


class ProviderTagCoverage(db.Model):
    """``ProviderCoverage`` for tag subscriptions: one row per (kind, tag) an active provider
    subscribes to, with their base cell and radius, so the tag-matching query is the same box
    query on the same kind of index, keyed by the tag instead of the category."""

    __tablename__ = "provider_tag_coverage"
    __table_args__ = (
        Index("ix_provider_tag_coverage_lookup", "kind", "tag", "lat_row", "lon", "lat",
              "radius_km", "provider_id", "user_id"),
    )

    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lat_row: Mapped[int] = mapped_column(Integer)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_km: Mapped[float] = mapped_column(Float)
