"""The signals as data: each need's tags (``need_tags``), the trend counters (``trend_hits``)
and how many customers each tile's tag has (``trend_groups``)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db_types import IDS_NEVER_REUSED
from marketplace.extensions import db

#: A hit is ``shared`` when its tile-tag group has at least this many customers: a group of one
#: can pass no floor k >= 2, and the trends queries read only shared hits (k >= 2).
SHARED_FROM = 2


class NeedTag(db.Model):
    """One signal of a need (kind intent | topic | mention, the normalised tag), written when
    the need is posted. ``position`` keeps the order they were written in. The (kind, tag)
    index finds the needs of a tag."""

    __tablename__ = "need_tags"
    __table_args__ = (Index("ix_need_tags_kind_tag", "kind", "tag"),)

    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"),
                                         primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger)


class TrendHit(db.Model):
    """How many needs one customer posted with one intent or topic tag in one trend cell in one
    hour: the counter trends are summed from (``signals.services.trends``). A trend cell is a
    fixed 0.1 x 0.1 degree tile (``geo.lat_row`` and ``trend_col`` of the need's grid-cell
    centre, never its true point); ``hour`` counts hours since 1970 (UTC). One row per
    customer, so the k floor can count distinct customers exactly. The query names every tile
    (row IN, column IN) so each tile is one seek and a range of hours."""

    __tablename__ = "trend_hits"
    # The primary key is the counter's identity (the upsert of ``_count``): clustered on SQLite
    # (WITHOUT ROWID), with ``needs`` included on PostgreSQL.
    __table_args__ = (
        PrimaryKeyConstraint("cell_row", "cell_col", "hour", "kind", "tag", "customer_id",
                             postgresql_include=["needs"]),
        Index("ix_trend_hits_hour", "hour"),  # prune-trends forgets the old hours
        # The trends query's index: only the hits of groups of two or more customers (most
        # tile-tags in a wide area are one customer's), each tile one seek and a range of
        # hours, grouped by the integer group id (sorting text keys cost more than the rest).
        Index("ix_trend_hits_shared", "cell_row", "cell_col", "hour", "group_id",
              "customer_id", "needs", postgresql_where=text("shared"),
              sqlite_where=text("shared = 1")),
        Index("ix_trend_hits_group_id", "group_id", "customer_id"),  # regroup counts a group
        {"sqlite_with_rowid": False},
    )

    cell_row: Mapped[int] = mapped_column(Integer, autoincrement=False)
    cell_col: Mapped[int] = mapped_column(Integer, autoincrement=False)
    hour: Mapped[int] = mapped_column(Integer, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(8))
    tag: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                             index=True)
    needs: Mapped[int] = mapped_column(Integer, default=1)
    #: the trend_groups row of (cell_row, cell_col, kind, tag)
    group_id: Mapped[int] = mapped_column(ForeignKey("trend_groups.id", ondelete="CASCADE"))
    #: whether that group has at least ``SHARED_FROM`` customers (kept by ``signals.services``)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TrendGroup(db.Model):
    """How many distinct customers a tag has in one trend tile over every hour still kept (no
    window is longer, so no window has more). Trends read only the hits of groups at or over
    the k floor: in a 50 km, 7-day area most tile-tag groups are one or two customers, and
    none of them can be shown. It may count too many for a while (a customer erased, two first
    uses of one customer at once): trends then read a group they did not need to. Counting a
    group again (prune, moderation, a removed tag) while another customer's first use of it
    commits can leave it one short until it is next counted: trends may then leave out a tag
    they could show, never show one they may not. No customer is named: one row per tile and
    tag. Its ``id`` is what the hits name (``trend_hits.group_id``), and what trends group by.
    """

    __tablename__ = "trend_groups"
    __table_args__ = (UniqueConstraint("cell_row", "cell_col", "kind", "tag",
                                       name="uq_trend_groups_tile_tag"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell_row: Mapped[int] = mapped_column(Integer, autoincrement=False)
    cell_col: Mapped[int] = mapped_column(Integer, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(8))
    tag: Mapped[str] = mapped_column(String(40))
    customers: Mapped[int] = mapped_column(Integer)
