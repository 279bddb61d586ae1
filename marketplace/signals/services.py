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
floor in any window, and in a wide area most of them are one customer's. ``trend_groups`` keeps
each tile-tag's customer count (at least the true one) under an integer id; each hit names its
group and is ``shared`` once that group has two customers (``SHARED_FROM``). The queries read
only the area's shared hits (one partial index, one seek per tile and a range of hours), group
them by the integer id (sorting the text keys cost more than everything else), and look up the
kind and tag of only the groups that pass. A floor k of 1 (no floor) reads every hit.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, case, delete, false, func, or_, select, tuple_, update

from marketplace.extensions import db, upsert
from marketplace.geo import grid_cell_centre, lat_row, search_box
from marketplace.signals.models import SHARED_FROM, NeedTag, TrendGroup, TrendHit
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
    tags = sorted(set(tags))  # one order for every writer: the group rows lock in it
    if delta > 0:
        # the tags this customer uses in this tile for the first time (in the kept hours)
        had = {tuple(r) for r in db.session.execute(
            select(_T.kind, _T.tag).distinct()
            .where(_T.customer_id == customer_id, _T.cell_row == row, _T.cell_col == col,
                   tuple_(_T.kind, _T.tag).in_(tags)))}
        # One upsert counts the first uses and locks every group row (until commit), so a
        # hit is written knowing whether its group is shared, and a group turning shared
        # marks every hit it has (no other writer of the group is half-way).
        group = upsert()(TrendGroup).values([
            {"cell_row": row, "cell_col": col, "kind": kind, "tag": tag,
             "customers": 0 if (kind, tag) in had else 1} for kind, tag in tags])
        groups = {(kind, tag): (gid, customers) for gid, kind, tag, customers in
                  db.session.execute(group.on_conflict_do_update(
                      index_elements=["cell_row", "cell_col", "kind", "tag"],
                      set_={"customers": TrendGroup.customers + group.excluded.customers})
                      .returning(TrendGroup.id, TrendGroup.kind, TrendGroup.tag,
                                 TrendGroup.customers))}
        rows = [{**key, "kind": kind, "tag": tag, "needs": delta, "group_id": groups[kind, tag][0],
                 "shared": groups[kind, tag][1] >= SHARED_FROM} for kind, tag in tags]
        stmt = upsert()(TrendHit).values(rows)
        db.session.execute(stmt.on_conflict_do_update(
            index_elements=["cell_row", "cell_col", "hour", "kind", "tag", "customer_id"],
            set_={"needs": TrendHit.needs + delta}))
        turned = [gid for (kind, tag), (gid, customers) in groups.items()
                  if customers == SHARED_FROM and (kind, tag) not in had]
        if turned:
            db.session.execute(update(TrendHit.__table__).where(
                _T.group_id.in_(turned), _T.shared == false()).values(shared=True))
        return
    match = [_T.cell_row == row, _T.cell_col == col,
             _T.hour == key["hour"], _T.customer_id == customer_id,
             tuple_(_T.kind, _T.tag).in_(tags)]
    touched = set(db.session.scalars(select(_T.group_id).where(*match)))
    db.session.execute(update(TrendHit.__table__).where(*match).values(needs=_T.needs + delta))
    db.session.execute(delete(TrendHit.__table__).where(*match, _T.needs <= 0))
    regroup(touched)


def regroup(ids: set[int]) -> None:
    """Count the distinct customers of these tile-tag groups (by id) again from
    ``trend_hits`` (in the caller's transaction), after hits went or came back, and mark
    their hits shared or not by it: a group left with none is removed."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), 400):
        chunk = ordered[start:start + 400]
        counts = dict(db.session.execute(  # type: ignore[arg-type]
            select(_T.group_id, func.count(func.distinct(_T.customer_id)))
            .where(_T.group_id.in_(chunk)).group_by(_T.group_id)).all())
        gone = [gid for gid in chunk if gid not in counts]
        if gone:
            db.session.execute(delete(TrendGroup.__table__).where(_G.id.in_(gone)))
        for customers, same in _by_count(counts).items():
            db.session.execute(update(TrendGroup.__table__).where(_G.id.in_(same))
                               .values(customers=customers))
        for shared in (True, False):
            same = [gid for gid, n in counts.items() if (n >= SHARED_FROM) == shared]
            if same:
                db.session.execute(update(TrendHit.__table__).where(
                    _T.group_id.in_(same), _T.shared != shared).values(shared=shared))


def _by_count(counts: dict[int, int]) -> dict[int, list[int]]:
    grouped: dict[int, list[int]] = defaultdict(list)
    for gid, n in counts.items():
        grouped[n].append(gid)
    return grouped


def _groups_of(*where: Any) -> set[int]:
    return set(db.session.scalars(select(_T.group_id).distinct().where(*where)))


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


def _area_hits(shared: bool) -> list[Any]:
    """The conditions on the hits of the area's tiles (bind parameters ``rows``, ``cols``) in
    hours ``since``..``until``; with ``shared``, of groups of two customers or more only
    (``ix_trend_hits_shared``): the hits of every other group cannot pass a floor k >= 2."""
    rows, cols = bindparam("rows", expanding=True), bindparam("cols", expanding=True)
    where = [_T.cell_row.in_(rows), _T.cell_col.in_(cols), _T.hour >= bindparam("since"),
             _T.hour <= bindparam("until")]
    return [*where, _T.shared] if shared else where


def _statement(shared: bool) -> Any:
    """Per group of the area over the floor (bind parameter ``k``) in either window: its needs
    and customers in the current window (``current`` on) and in the one before. The hits are
    grouped by the integer group id, and only the groups that pass are looked up by it."""
    current = _T.hour >= bindparam("current")
    now_who = func.count(func.distinct(case((current, _T.customer_id))))
    before_who = func.count(func.distinct(case((current, None), else_=_T.customer_id)))
    per_group = (
        select(_T.group_id, func.sum(case((current, _T.needs), else_=0)).label("needs"),
               now_who.label("customers"),
               func.sum(case((current, 0), else_=_T.needs)).label("before"),
               before_who.label("customers_before"))
        .where(*_area_hits(shared))
        .group_by(_T.group_id)
        # Only tiles over the floor in one window or the other leave the database.
        .having(or_(now_who >= bindparam("k"), before_who >= bindparam("k")))
    ).subquery()
    c = per_group.c
    return (select(_G.kind, _G.tag, c.needs, c.customers, c.before, c.customers_before)
            .select_from(per_group.join(TrendGroup.__table__, _G.id == c.group_id)))


_STATEMENT = {shared: _statement(shared) for shared in (False, True)}


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
    for kind, tag, needs, customers, before, customers_before in \
            db.session.connection().execute(_STATEMENT[k >= SHARED_FROM], params):
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


def _suggest_statement(prefixed: bool, shared: bool) -> Any:
    per_group = (select(_T.group_id, func.sum(_T.needs).label("needs"))
                 .where(*_area_hits(shared))
                 .group_by(_T.group_id)
                 .having(func.count(func.distinct(_T.customer_id)) >= bindparam("k"))).subquery()
    statement = (select(_G.kind, _G.tag, per_group.c.needs)
                 .select_from(per_group.join(TrendGroup.__table__,
                                             _G.id == per_group.c.group_id)))
    if prefixed:
        statement = statement.where(
            _G.kind == bindparam("kind"),
            func.substr(_G.tag, 1, bindparam("length")) == bindparam("prefix"))
    return statement


_SUGGEST = {(p, shared): _suggest_statement(p, shared) for p in (False, True)
            for shared in (False, True)}


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
            _SUGGEST[prefixed, k >= SHARED_FROM], params):
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
                 touched: set[int]) -> None:
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
        ids = _group_ids({(r, c, kind, tag) for r, c, _h, kind, tag in counts})
        db.session.execute(TrendHit.__table__.insert(), [
            {"cell_row": r, "cell_col": c, "hour": h, "kind": kind, "tag": tag,
             "customer_id": customer_id, "needs": n, "group_id": ids[r, c, kind, tag],
             "shared": False}  # regroup marks them
            for (r, c, h, kind, tag), n in counts.items()])
        touched.update(ids.values())


def _group_ids(keys: set[tuple[int, int, str, str]]) -> dict[tuple[int, int, str, str], int]:
    """The ids of these tile-tag groups, each created (counting no one yet) if it is new; the
    rows stay locked until commit, taken in one order. ``regroup`` counts them."""
    ids: dict[tuple[int, int, str, str], int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 400):
        group = upsert()(TrendGroup).values([
            {"cell_row": r, "cell_col": c, "kind": kind, "tag": tag, "customers": 0}
            for r, c, kind, tag in ordered[start:start + 400]])
        for gid, r, c, kind, tag in db.session.execute(group.on_conflict_do_update(
                index_elements=["cell_row", "cell_col", "kind", "tag"],
                set_={"customers": TrendGroup.customers})
                .returning(_G.id, _G.cell_row, _G.cell_col, _G.kind, _G.tag)):
            ids[r, c, kind, tag] = gid
    return ids


def prune(now: datetime | None = None) -> int:
    """Forget trend counters older than ``KEEP_HOURS``; commits, returns how many rows went."""
    horizon = hour_of(now or datetime.now(UTC)) - KEEP_HOURS
    touched = _groups_of(_T.hour < horizon)
    result = db.session.execute(TrendHit.__table__.delete().where(_T.hour < horizon))
    regroup(touched)
    db.session.commit()
    return int(result.rowcount or 0)
