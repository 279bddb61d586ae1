"""The provider feed as SQL pages: open needs posted to the provider now, nearest distance band
first, then newest — with a keyset cursor (band, id) and LIMIT, so a page costs what its size
costs, not what the number of open needs costs.

Whether a need is in the feed and its band are both decided on grid-cell centres — the need's
cell and the provider's base cell (the privacy rule in ``geo.core``) — and the exact rule
(``geo.in_reach``, each radius covering the other; the band by ``display_km``) stays in
Python. SQL narrows it down without trigonometry, from each need's cell unit vector
(``Need.cell_ux``...): the dot product of two unit vectors is the cosine of the angle between
them. For one band at a time, outward from the cursor's, one query takes the candidates that
could be in that band (the latitude-row/longitude box of the band's outer edge widened by a
cell, which the feed index serves on the needs' true points; each radius by dot product of
cells; the band's ring of cell-centre distances, widened by the sphere's error margin) newest
first with LIMIT; Python keeps those whose exact band it is.
Every prefilter is a superset of the rule by a margin, so the result is exactly the old
"build every matching need and sort" — see tests/test_feed_paging.py.

Needs sent to the provider directly (a customer's favourites, an @mention of their handle, or
one of their tag subscriptions -- the last under the distance rule: ``need_recipients``) are
not found by place: they are read by the recipient rows (few per provider), given their band the
same way, and merged into the same order, so one cursor pages both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, bindparam, literal, or_, select, union_all

from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.db_types import utcnow
from marketplace.extensions import db, rows
from marketplace.geo import (
    CELL_SLACK_KM,
    DISTANCE_BANDS,
    SPHERE_MARGIN,
    Point,
    band_index,
    cell_distance_km,
    display_km,
    grid_cell_centre,
    in_reach,
    km_cos,
    search_box,
    unit_vector,
)
from marketplace.needs.models import Audience, Need, NeedRecipient, NeedStatus
from marketplace.providers.models import Provider

# Far above the rounding of a dot product of unit vectors (~1e-16), far below what a metre
# changes in it: the SQL prefilters keep every row the exact rule keeps.
DOT_EPSILON = 1e-12
BANDS = len(DISTANCE_BANDS)
_EXTRA = 4  # rows fetched beyond what a page still needs, for the few the exact rule drops
_ROUNDS = 3  # statements of one band each before the rest of the bands go in one


@dataclass(frozen=True)
class Slot:
    """A need's place in one provider's feed: its band, then its id (newest first)."""

    band: int
    need_id: int


def _edges(band: int) -> tuple[float, float]:
    return (DISTANCE_BANDS[band - 1][0] if band else 0.0), DISTANCE_BANDS[band][0]


def _dot(columns: tuple[Any, Any, Any], prefix: str) -> Any:
    return sum((column * bindparam(f"{prefix}{axis}", type_=Float)
                for column, axis in zip(columns, "xyz", strict=True)),
               start=literal(0.0, Float))


def _vector_params(prefix: str, lat: float, lon: float) -> dict[str, float]:
    v = unit_vector(lat, lon)
    return {f"{prefix}x": v.x, f"{prefix}y": v.y, f"{prefix}z": v.z}


# One band's shape in a page statement: (band, longitude ranges of its box, has a lower edge,
# has an upper edge, continues below a cursor id).
Shape = tuple[int, int, bool, bool, bool]


# The accounts suspended by moderation: their open needs are posted to nobody meanwhile.
SUSPENDED = select(User.id).where(User.suspended_at.is_not(None))


@lru_cache(maxsize=512)
def _statement(shapes: tuple[Shape, ...], blocking: bool, among: bool) -> Any:
    """The page query for these band shapes, built once per shape (building it per call cost
    more than running it): per band, the newest candidates of that band's superset with
    LIMIT, each in a subquery, glued with UNION ALL — one round trip per page."""
    cell_dot = _dot((Need.cell_ux, Need.cell_uy, Need.cell_uz), "c")
    members = []
    for band, ranges, low, high, below in shapes:
        where = [
            Need.status == NeedStatus.OPEN,
            Need.hidden_at.is_(None),
            Need.audience == Audience.NEARBY,
            Need.category_id.in_(bindparam("categories", expanding=True)),
            Need.lat_row.in_(bindparam(f"rows{band}", expanding=True)),
            or_(*(Need.lon.between(bindparam(f"lo{band}_{i}"), bindparam(f"hi{band}_{i}"))
                  for i in range(ranges))),
            Need.expires_at > bindparam("now", type_=Need.expires_at.type),
            Need.customer_id != bindparam("user_id"),
            Need.customer_id.not_in(SUSPENDED),
            cell_dot >= bindparam("reach_cos", type_=Float),
            cell_dot >= Need.reach_cos - DOT_EPSILON,
        ]
        if high:
            where.append(cell_dot > bindparam(f"high{band}", type_=Float))
        if low:
            where.append(cell_dot <= bindparam(f"low{band}", type_=Float))
        if below:
            where.append(Need.id < bindparam("below"))
        if blocking:
            where.append(Need.customer_id.not_in(bindparam("blocking", expanding=True)))
        if among:
            where.append(Need.id.in_(bindparam("among", expanding=True)))
        member = select(literal(band).label("band"), Need.id, Need.lat, Need.lon,
                        Need.radius_km).where(*where)
        if not among:
            member = member.order_by(Need.id.desc()).limit(bindparam("batch"))
        members.append(select(member.subquery()))
    return members[0] if len(members) == 1 else union_all(*members)


@lru_cache(maxsize=4)
def _direct_statement(blocking: bool, among: bool) -> Any:
    """``Feed.direct``'s statement, built once per shape (asked on every feed page)."""
    stmt = (select(Need.id, Need.lat, Need.lon, Need.radius_km, NeedRecipient.via)
            .join(NeedRecipient, NeedRecipient.need_id == Need.id)
            .where(NeedRecipient.provider_id == bindparam("provider"),
                   Need.status == NeedStatus.OPEN, Need.hidden_at.is_(None),
                   Need.customer_id.not_in(SUSPENDED), Need.expires_at > bindparam("now"),
                   Need.customer_id != bindparam("user_id")))
    if blocking:
        stmt = stmt.where(Need.customer_id.not_in(bindparam("blocking", expanding=True)))
    if among:
        stmt = stmt.where(Need.id.in_(bindparam("among", expanding=True)))
    return stmt


class Feed:
    """The queries of one provider's feed, as of now."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.blocking = sorted(blocks.customers_blocking(provider.id))
        p = provider
        self.cell: Point = grid_cell_centre(p.base_lat, p.base_lon)
        self.params: dict[str, Any] = {
            "categories": [c.id for c in p.categories], "now": utcnow(), "user_id": p.user_id,
            "reach_cos": km_cos(p.radius_km) - DOT_EPSILON, **_vector_params("c", *self.cell),
        }
        if self.blocking:
            self.params["blocking"] = self.blocking
        # The farthest band any need the provider reaches can be in (cell to cell, like the rule).
        reach = p.radius_km
        self.last_band = max(b for b in range(BANDS) if _edges(b)[0] * (1 - SPHERE_MARGIN) <= reach)

    @property
    def empty(self) -> bool:
        return not self.provider.takes_work or not self.params["categories"]

    def _band_params(self, band: int, whole: bool = False) -> tuple[Shape, dict[str, Any]]:
        """Band ``band``'s box around the provider's cell (its outer edge in cell distance, at
        most the provider's radius, plus a cell: the index holds the needs' true points) and
        cell-centre ring, both widened by every margin of the exact rule; with ``whole``, the
        provider's whole box and no ring."""
        p = self.provider
        low, high = (0.0, math.inf) if whole else _edges(band)
        outer = min(p.radius_km, high * (1 + SPHERE_MARGIN)) + CELL_SLACK_KM
        box = search_box(self.cell.lat, self.cell.lon, outer)
        params: dict[str, Any] = {f"rows{band}": list(box.rows)}
        for i, (lo, hi) in enumerate(box.lon_ranges):
            params[f"lo{band}_{i}"], params[f"hi{band}_{i}"] = lo, hi
        if math.isfinite(high):
            params[f"high{band}"] = km_cos(high * (1 + SPHERE_MARGIN)) - DOT_EPSILON
        if low:
            params[f"low{band}"] = km_cos(low * (1 - SPHERE_MARGIN)) + DOT_EPSILON
        return (band, len(box.lon_ranges), bool(low), math.isfinite(high), False), params

    def _rows(self, bands: range, below: int | None, batch: int | None = None,
              among: Sequence[int] = ()) -> dict[int, list[Any]]:
        shapes, params = [], dict(self.params)
        for band in bands:
            shape, band_params = self._band_params(band, whole=bool(among))
            if below is not None and band == bands.start:
                shape = (*shape[:4], True)
            shapes.append(shape)
            params.update(band_params)
        if below is not None:
            params["below"] = below
        if batch is not None:
            params["batch"] = batch
        if among:
            params["among"] = list(among)
        stmt = _statement(tuple(shapes), bool(self.blocking), bool(among))
        by_band: dict[int, list[Any]] = {band: [] for band in bands}
        for row in db.session.connection().execute(stmt, params):
            by_band[row[0]].append(row)
        return by_band

    def _band_of(self, lat: float, lon: float, radius_km: float) -> int | None:
        """The need's exact band, or None if the matching rule does not post it here."""
        cell = grid_cell_centre(lat, lon)
        if in_reach(self.cell, self.provider.radius_km, cell, radius_km):
            return band_index(display_km(self.cell, cell))
        return None

    def direct(self, among: Sequence[int] | None = None) -> list[Slot]:
        """The open needs sent to this provider directly, in feed order (whatever their
        distance and category: the customer chose the provider)."""
        p = self.provider
        if not p.takes_work:
            return []
        params = {"provider": p.id, "now": self.params["now"], "user_id": p.user_id}
        if self.blocking:
            params["blocking"] = self.blocking
        if among is not None:
            params["among"] = list(among)
        stmt = _direct_statement(bool(self.blocking), among is not None)
        # A need sent by a tag subscription keeps to the distance rule (as of now); one sent
        # to a favourite or by an @mention goes wherever the provider is.
        slots = [Slot(band_index(cell_distance_km(p.base_lat, p.base_lon, row.lat, row.lon)),
                      row.id) for row in rows(stmt, params)
                 if row.via != "tag" or self._band_of(row.lat, row.lon, row.radius_km) is not None]
        return sorted(slots, key=_order)

    def page(self, after: Slot | None, limit: int) -> tuple[list[Slot], Slot | None]:
        """Up to ``limit`` slots after ``after``, and the last one if more follow: the nearby
        page and the direct needs after ``after``, merged (both in the same order, disjoint)."""
        nearby, more = self._nearby_page(after, limit)
        direct = [s for s in self.direct() if after is None or _order(s) > _order(after)]
        if not direct:
            return nearby, more
        merged = sorted(set(nearby) | set(direct), key=_order)  # sent twice (a category
        # and a mention): once
        if more is not None or len(merged) > limit:
            return merged[:limit], merged[limit - 1]
        return merged, None

    def _nearby_page(self, after: Slot | None, limit: int) -> tuple[list[Slot], Slot | None]:
        if self.empty:
            return [], None
        found: list[Slot] = []
        band, below = (after.band, after.need_id) if after else (0, None)
        batch = limit + 1 + _EXTRA
        rounds = 0
        while band <= self.last_band and len(found) <= limit:
            # A band at a time outward (each scans only its own box), the rest together after
            # a few rounds, so a sparse feed costs a handful of statements at most.
            rounds += 1
            stop = band if rounds < _ROUNDS else self.last_band
            rows = self._rows(range(band, stop + 1), below, batch)
            for band, band_rows in rows.items():  # noqa: B007  (the loop resumes from it)
                found += [Slot(band, row.id) for row in band_rows
                          if self._band_of(row.lat, row.lon, row.radius_km) == band]
                if len(found) > limit:
                    break
                if len(band_rows) == batch:  # this band goes on: read more of it next round
                    below = band_rows[-1].id
                    break
            else:
                band, below = max(rows) + 1, None
        if len(found) > limit:
            return found[:limit], found[limit - 1]
        return found, None

    def among(self, need_ids: Sequence[int]) -> list[Slot]:
        """Which of ``need_ids`` are in the feed now (in feed order)."""
        if not need_ids:
            return []
        slots = set(self.direct(among=need_ids))
        if not self.empty:
            rows = self._rows(range(1), None, among=need_ids)
            slots |= {Slot(band, row.id) for row in rows[0]
                      if (band := self._band_of(row.lat, row.lon, row.radius_km)) is not None}
        return sorted(slots, key=_order)


def _order(slot: Slot) -> tuple[int, int]:
    """Feed order: nearest band first, then newest."""
    return slot.band, -slot.need_id
