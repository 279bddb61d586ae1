"""Signals as data: recording a new need's tags (``record``) and what people nearby want
(``trends``), summed from counters rather than a scan of needs.

Trends are aggregates only, built so that no single customer or need can be picked out:

- **Tiles.** A need counts in the fixed 0.1 x 0.1 degree trend tile (~11 x 8 km at 45 degrees)
  of its grid-cell centre, never its point. An area is the set of whole tiles that the box
  around the circle (``geo.search_box``) touches.
- **The k floor, per tile.** A tile adds to a tag's count only when at least
  ``TRENDS_MIN_CUSTOMERS`` (k, default 3) distinct customers used the tag there in the window.
  So two areas that differ by one tile differ by a group of at least k customers, never by
  one person's needs, and a tag used by fewer than k people anywhere is never shown.
- **Buckets.** Counts are shown as the lower edge of a bucket (k, 5, 10, 20, 50, 100, 200,
  500, ...; ``bucket``), and tags are ranked by bucket, then alphabetically: one more need
  changes an answer only when it takes a tag over a bucket edge, and then says no more than
  that.
- **Hours.** Windows are whole hours (``24h`` or ``7d`` ending with the current hour), the
  previous window the same length just before.

Speed: a tile's tag that fewer than k customers used over all the kept hours cannot pass the
floor in any window, and in a wide area most of them are such. ``trend_groups`` keeps each
tile-tag's customer count (at least the true one), and the queries read only the hits of
groups at or over k, each by one index seek over its hours.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, bindparam, case, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from marketplace.extensions import db
from marketplace.geo import grid_cell_centre, lat_row, search_box
from marketplace.signals.models import NeedTag, TrendGroup, TrendHit
from marketplace.signals.parser import INTENT, MENTION, TOPIC, Signals, normalise, parse

TILE_DEG = 0.1
WINDOWS = {"24h": 24, "7d": 24 * 7}
TOP = 10  # tags per kind
_LADDER = (5, 10, 20, 50)


def trend_col(lon: float) -> int:
    """The trend tile's column of a longitude: fixed 0.1-degree columns from -180."""
    return min(math.floor((lon + 180.0) / TILE_DEG), round(360 / TILE_DEG) - 1)


def hour_of(moment: datetime) -> int:
    return math.floor(moment.timestamp() / 3600)


def bucket(count: int, k: int) -> int:
    """The lower edge of ``count``'s bucket: k, then 5, 10, 20, 50, then 100, 200, 500 and on
    by decades (0 below k)."""
    if count < k:
        return 0
    edge = k
    for step in _LADDER:
        if count >= step:
            edge = max(edge, step)
    decade = 100
    while count >= decade:
        for mult in (1, 2, 5):
            if count >= decade * mult:
                edge = decade * mult
        decade *= 10
    return edge


def record(need_id: int, customer_id: int | None, lat: float, lon: float, created_at: datetime,
           *texts: str) -> Signals:
    """Store the signals of a new need (in the caller's transaction) and count its intent and
    topic tags in its trend tile and hour; returns them."""
    signals = parse(*texts)
    pairs = signals.pairs()
    if not pairs:
        return signals
    db.session.add_all(NeedTag(need_id=need_id, kind=kind, tag=tag, position=i)
                       for i, (kind, tag) in enumerate(pairs))
    if customer_id is not None:
        _count(customer_id, lat, lon, created_at, [p for p in pairs if p[0] != MENTION], +1)
    db.session.flush()
    return signals


def rerecord(need_id: int, customer_id: int | None, lat: float, lon: float,
             created_at: datetime, *texts: str) -> Signals:
    """Store the signals of an edited need in place of the ones it had, in the caller's
    transaction: a tag no longer written is uncounted from the need's trend tile and hour, a
    new one counted there (the hour it was posted, as if it had been written then), so the
    counters always sum the needs as they read now. Returns the new signals."""
    signals = parse(*texts)
    pairs = signals.pairs()
    rows = db.session.scalars(select(NeedTag).where(NeedTag.need_id == need_id)).all()
    before = [(row.kind, row.tag) for row in sorted(rows, key=lambda r: r.position)]
    for row in rows:
        db.session.delete(row)
    db.session.flush()
    db.session.add_all(NeedTag(need_id=need_id, kind=kind, tag=tag, position=i)
                       for i, (kind, tag) in enumerate(pairs))
    if customer_id is not None:
        old = {p for p in before if p[0] != MENTION}
        new = {p for p in pairs if p[0] != MENTION}
        _count(customer_id, lat, lon, created_at, sorted(new - old), +1)
        _count(customer_id, lat, lon, created_at, sorted(old - new), -1)
    db.session.flush()
    return signals


def _count(customer_id: int, lat: float, lon: float, created_at: datetime,
           tags: list[tuple[str, str]], delta: int) -> None:
    """Add ``delta`` (one need more or less) to each tag's counter of this customer in the
    need's trend tile and hour; a counter that reaches 0 is removed."""
    if not tags:
        return
    cell = grid_cell_centre(lat, lon)
    key = {"cell_row": lat_row(cell.lat), "cell_col": trend_col(cell.lon),
           "hour": hour_of(created_at), "customer_id": customer_id}
    row, col = key["cell_row"], key["cell_col"]
    if delta > 0:
        # the tags this customer uses in this tile for the first time (in the kept hours)
        had = {tuple(r) for r in db.session.execute(
            select(_T.kind, _T.tag).distinct()
            .where(_T.customer_id == customer_id, _T.cell_row == row, _T.cell_col == col,
                   tuple_(_T.kind, _T.tag).in_(tags)))}
        rows = [{**key, "kind": kind, "tag": tag, "needs": delta} for kind, tag in tags]
        stmt = _insert()(TrendHit).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["cell_row", "cell_col", "hour", "kind", "tag", "customer_id"],
            set_={"needs": TrendHit.needs + delta})
        db.session.execute(stmt)
        first = [{"cell_row": row, "cell_col": col, "kind": kind, "tag": tag, "customers": 1}
                 for kind, tag in tags if (kind, tag) not in had]
        if first:
            group = _insert()(TrendGroup).values(first)
            db.session.execute(group.on_conflict_do_update(
                index_elements=["cell_row", "cell_col", "kind", "tag"],
                set_={"customers": TrendGroup.customers + 1}))
        return
    match = [_T.cell_row == row, _T.cell_col == col,
             _T.hour == key["hour"], _T.customer_id == customer_id,
             tuple_(_T.kind, _T.tag).in_(tags)]
    db.session.execute(update(TrendHit.__table__).where(*match).values(needs=_T.needs + delta))
    db.session.execute(delete(TrendHit.__table__).where(*match, _T.needs <= 0))
    regroup({(row, col, kind, tag) for kind, tag in tags})


def _insert() -> Any:
    return pg_insert if db.session.connection().dialect.name == "postgresql" else sqlite_insert


GroupKey = tuple[int, int, str, str]


def regroup(keys: set[GroupKey]) -> None:
    """Count the distinct customers of these tile-tag groups again from ``trend_hits`` (in the
    caller's transaction), after hits went: a group left with none is removed."""
    ordered = sorted(keys)
    hit_key = tuple_(_T.cell_row, _T.cell_col, _T.kind, _T.tag)
    group_key = tuple_(_G.cell_row, _G.cell_col, _G.kind, _G.tag)
    for start in range(0, len(ordered), 400):
        chunk = ordered[start:start + 400]
        counts = db.session.execute(
            select(_T.cell_row, _T.cell_col, _T.kind, _T.tag,
                   func.count(func.distinct(_T.customer_id)))
            .where(hit_key.in_(chunk))
            .group_by(_T.cell_row, _T.cell_col, _T.kind, _T.tag)).all()
        db.session.execute(delete(TrendGroup.__table__).where(group_key.in_(chunk)))
        if counts:
            db.session.execute(TrendGroup.__table__.insert(), [
                {"cell_row": r, "cell_col": c, "kind": kind, "tag": tag, "customers": n}
                for r, c, kind, tag, n in counts])


def _groups_of(*where: Any) -> set[GroupKey]:
    return {tuple(r) for r in db.session.execute(  # type: ignore[misc]
        select(_T.cell_row, _T.cell_col, _T.kind, _T.tag).distinct().where(*where))}


@dataclass(frozen=True)
class Area:
    rows: tuple[int, ...]
    cols: tuple[tuple[int, int], ...]

    @property
    def columns(self) -> list[int]:
        return [c for lo, hi in self.cols for c in range(lo, hi + 1)]


def area(lat: float, lon: float, radius_km: float) -> Area:
    """The whole trend tiles the box around the circle of ``radius_km`` around the grid cell of
    (lat, lon) touches."""
    cell = grid_cell_centre(lat, lon)
    box = search_box(cell.lat, cell.lon, radius_km)
    return Area(box.rows, tuple((trend_col(lo), trend_col(hi)) for lo, hi in box.lon_ranges))


def _tiles(where: Area) -> dict[str, Any]:
    return {"rows": list(where.rows), "cols": where.columns}


_T = TrendHit.__table__.c
_G = TrendGroup.__table__.c


def _hits_of_groups_over_the_floor() -> tuple[Any, list[Any]]:
    """trend_hits joined to the area's groups with at least k customers (bind parameters
    ``rows``, ``cols``, ``k``), and the conditions saying so: the hits of every other group
    cannot pass the floor and are never read."""
    rows, cols = bindparam("rows", expanding=True), bindparam("cols", expanding=True)
    joined = TrendHit.__table__.join(TrendGroup.__table__, and_(
        _T.cell_row == _G.cell_row, _T.cell_col == _G.cell_col, _T.kind == _G.kind,
        _T.tag == _G.tag))
    return joined, [_G.cell_row.in_(rows), _G.cell_col.in_(cols), _G.customers >= bindparam("k"),
                    _T.cell_row.in_(rows), _T.cell_col.in_(cols)]


def _statement() -> Any:
    current = _T.hour >= bindparam("current")
    joined, over_the_floor = _hits_of_groups_over_the_floor()
    return (
        select(_T.kind, _T.tag, _T.cell_row, _T.cell_col,
               func.sum(case((current, _T.needs), else_=0)),
               func.count(func.distinct(case((current, _T.customer_id)))),
               func.sum(case((current, 0), else_=_T.needs)),
               func.count(func.distinct(case((current, None), else_=_T.customer_id))))
        .select_from(joined)
        .where(*over_the_floor, _T.hour >= bindparam("since"), _T.hour <= bindparam("until"))
        .group_by(_T.kind, _T.tag, _T.cell_row, _T.cell_col)
        # Only tiles over the floor in one window or the other leave the database.
        .having(or_(func.count(func.distinct(case((current, _T.customer_id))))
                    >= bindparam("k"),
                    func.count(func.distinct(case((current, None), else_=_T.customer_id)))
                    >= bindparam("k")))
    )


_STATEMENT = _statement()


def trends(lat: float, lon: float, radius_km: float, window: str,
           now: datetime | None = None) -> dict[str, Any]:
    """The top intent and topic tags used in the area around (lat, lon) in ``window``, with
    their bucketed counts, the previous window's and the change (see the module's rules)."""
    k = current_app.config["TRENDS_MIN_CUSTOMERS"]
    hours = WINDOWS[window]
    now = now or datetime.now(UTC)
    until = hour_of(now)
    current = until - hours + 1
    where = area(lat, lon, radius_km)
    params: dict[str, Any] = {**_tiles(where), "current": current, "k": k,
                              "since": current - hours, "until": until}
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for kind, tag, _row, _col, needs, customers, before, customers_before in \
            db.session.connection().execute(_STATEMENT, params):
        if customers >= k:
            totals[(kind, tag)][0] += needs
        if customers_before >= k:
            totals[(kind, tag)][1] += before
    by_kind: dict[str, list[dict[str, Any]]] = {INTENT: [], TOPIC: []}
    for (kind, tag), (needs, before) in totals.items():
        shown = bucket(needs, k)
        if shown:
            previous = bucket(before, k)
            by_kind[kind].append({"tag": tag, "count": shown, "previous": previous,
                                  "change": shown - previous})
    for items in by_kind.values():
        items.sort(key=lambda item: (-item["count"], item["tag"]))
        del items[TOP:]
    start = datetime.fromtimestamp(current * 3600, UTC)
    return {"window": window, "since": start, "until": start + timedelta(hours=hours),
            "min_customers": k, "intents": by_kind[INTENT], "topics": by_kind[TOPIC]}


SUGGEST_RADIUS_KM = 25
SUGGEST_WINDOW = "7d"


def _suggest_statement(prefixed: bool) -> Any:
    joined, over_the_floor = _hits_of_groups_over_the_floor()
    where = [*over_the_floor, _T.hour >= bindparam("since"), _T.hour <= bindparam("until")]
    if prefixed:
        where += [_T.kind == bindparam("kind"),
                  func.substr(_T.tag, 1, bindparam("length")) == bindparam("prefix")]
    return (select(_T.kind, _T.tag, func.sum(_T.needs))
            .select_from(joined)
            .where(*where)
            .group_by(_T.kind, _T.tag, _T.cell_row, _T.cell_col)
            .having(func.count(func.distinct(_T.customer_id)) >= bindparam("k")))


_SUGGEST = {p: _suggest_statement(p) for p in (False, True)}


def suggest_tags(lat: float, lon: float, kind: str | None = None, prefix: str = "",
                 exclude: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(),
                 limit: int = 8, now: datetime | None = None) -> list[dict[str, Any]]:
    """Tags to offer someone typing a need here: the intent and topic tags used in the last 7
    days within ~25 km, under the same rules as ``trends`` (whole tiles, k distinct customers
    per tile, bucketed counts, ranked by bucket then alphabetically) -- of ``kind`` starting
    with ``prefix`` (normalised) when a tag is being typed, and without those in ``exclude``."""
    k = current_app.config["TRENDS_MIN_CUSTOMERS"]
    until = hour_of(now or datetime.now(UTC))
    where = area(lat, lon, SUGGEST_RADIUS_KM)
    prefix = normalise(prefix) if prefix else ""
    params: dict[str, Any] = {**_tiles(where), "since": until - WINDOWS[SUGGEST_WINDOW] + 1,
                              "until": until, "k": k}
    prefixed = bool(kind and prefix)
    if prefixed:
        params.update(kind=kind, prefix=prefix, length=len(prefix))
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row_kind, tag, needs in db.session.connection().execute(
            _SUGGEST[prefixed], params):
        if (row_kind, tag) not in exclude and (kind is None or row_kind == kind):
            totals[(row_kind, tag)] += needs
    ranked = sorted(((bucket(n, k), kind_, tag) for (kind_, tag), n in totals.items()),
                    key=lambda t: (-t[0], t[2], t[1]))
    return [{"kind": kind_, "tag": tag, "count": count} for count, kind_, tag in ranked[:limit]]


KEEP_HOURS = 2 * WINDOWS["7d"]  # the longest window and the previous one it is compared with


def recount(customer_id: int, needs: list[tuple[int, float, float, datetime]]) -> None:
    """Count one customer's trend hits again from ``needs`` -- (id, lat, lon, created_at) of
    those that count (not hidden, their customer not suspended) -- in the caller's
    transaction: moderation calls it when it hides or restores a need or suspends or restores
    the customer, so trends never show what moderation took away, and show it again once
    restored. Hours already pruned stay forgotten."""
    touched = _groups_of(_T.customer_id == customer_id)
    db.session.execute(TrendHit.__table__.delete().where(_T.customer_id == customer_id))
    _count_again(customer_id, needs, touched)  # adds the groups it counts in to ``touched``
    regroup(touched)


def _count_again(customer_id: int, needs: list[tuple[int, float, float, datetime]],
                 touched: set[GroupKey]) -> None:
    since = hour_of(datetime.now(UTC)) - KEEP_HOURS
    kept = [n for n in needs if hour_of(n[3]) >= since]
    if not kept:
        return
    tags: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for need_id, kind, tag in db.session.execute(
            select(NeedTag.need_id, NeedTag.kind, NeedTag.tag)
            .where(NeedTag.need_id.in_([n[0] for n in kept]), NeedTag.kind != MENTION)):
        tags[need_id].append((kind, tag))
    counts: dict[tuple[int, int, int, str, str], int] = defaultdict(int)
    for need_id, lat, lon, created_at in kept:
        cell = grid_cell_centre(lat, lon)
        for kind, tag in tags.get(need_id, []):
            counts[(lat_row(cell.lat), trend_col(cell.lon), hour_of(created_at), kind, tag)] += 1
    if counts:
        db.session.execute(TrendHit.__table__.insert(), [
            {"cell_row": r, "cell_col": c, "hour": h, "kind": kind, "tag": tag,
             "customer_id": customer_id, "needs": n}
            for (r, c, h, kind, tag), n in counts.items()])
        touched.update((r, c, kind, tag) for r, c, _h, kind, tag in counts)


def prune(now: datetime | None = None) -> int:
    """Forget trend counters older than ``KEEP_HOURS``; commits, returns how many rows went."""
    horizon = hour_of(now or datetime.now(UTC)) - KEEP_HOURS
    touched = _groups_of(_T.hour < horizon)
    result = db.session.execute(TrendHit.__table__.delete().where(_T.hour < horizon))
    regroup(touched)
    db.session.commit()
    return int(result.rowcount or 0)
