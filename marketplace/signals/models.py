"""The signals as data: each need's tags (``need_tags``), the trend counters (``trend_hits``)
and how many customers each tile's tag has (``trend_groups``)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, PrimaryKeyConstraint, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.extensions import db


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
    # The primary key is the trends query's index and covers it: clustered on SQLite (WITHOUT
    # ROWID), with ``needs`` included on PostgreSQL, so no row is visited twice.
    __table_args__ = (
        PrimaryKeyConstraint("cell_row", "cell_col", "hour", "kind", "tag", "customer_id",
                             postgresql_include=["needs"]),
        Index("ix_trend_hits_hour", "hour"),  # prune-trends forgets the old hours
        # One tile's tag over a range of hours, for the groups that can reach the floor
        # (trend_groups): the trends query seeks each of those instead of reading every hit.
        Index("ix_trend_hits_group", "cell_row", "cell_col", "kind", "tag", "hour",
              "customer_id", "needs"),
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


class TrendGroup(db.Model):
    """How many distinct customers a tag has in one trend tile over every hour still kept (no
    window is longer, so no window has more). Trends read only the hits of groups at or over
    the k floor: in a 50 km, 7-day area most tile-tag groups are one or two customers, and
    none of them can be shown. It may count too many for a while (a customer erased, two first
    uses of one customer at once): trends then read a group they did not need to. Counting a
    group again (prune, moderation, a removed tag) while another customer's first use of it
    commits can leave it one short until it is next counted: trends may then leave out a tag
    they could show, never show one they may not. No customer is named: one row per tile and
    tag."""

    __tablename__ = "trend_groups"

    cell_row: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    cell_col: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)
