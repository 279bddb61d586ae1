"""The spatial matching query: which providers a need is posted to (and so the reach preview's
count). It reads an index-backed box (``geo.search_box``) and then applies the exact rule
(``geo.in_reach``), so results equal a brute-force check of every provider.

Both sides are grid-cell centres: the index stores each provider's base *cell* and the box is
drawn around the need's cell, so who is matched -- which a customer can count before posting
and a provider can watch -- depends on nothing finer than the cells."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, or_, select

from marketplace.extensions import db
from marketplace.geo import Point, SearchBox, grid_cell_centre, in_reach, lat_row, search_box
from marketplace.providers.models import Provider, ProviderCoverage, ProviderTagCoverage


def box_filter(box: SearchBox, row_col: Any, lon_col: Any) -> Any:
    lon_clause = or_(*(lon_col.between(lo, hi) for lo, hi in box.lon_ranges))
    return and_(row_col.in_(box.rows), lon_clause)


class Match(NamedTuple):
    """A matched provider; ``cell`` is the centre of their base's grid cell (all the index
    holds, and all a distance band may be computed from)."""

    provider_id: int
    user_id: int
    cell: Point


# On PostgreSQL the box query goes straight to psycopg (inside the session's transaction):
# one statement text per shape, so psycopg prepares it after a few runs, and binary results.
# SQLAlchemy's per-execution overhead was most of the cost there (docs/performance.md).
# Every parameter is a scalar -- the latitude rows are generated from their first and last,
# not sent as an array -- so PostgreSQL's plan cache keeps one generic plan (with an array
# parameter it kept planning a custom plan for every call: ~0.05 ms of server CPU).
# The distance test runs in SQL too, widened by _SQL_SLACK_KM, so only the (near) matches
# come back to be decoded; ``in_reach`` then decides on those in Python, so the result is
# exactly the rule's (floating-point differences between the two are ~1e-12 km here).
_SQL_SLACK_KM = 1e-6
# Parameters, in order: category, first and last latitude row, one (lo, hi) per longitude
# range, then the need's cell (lat, cos(lat), lon) and radius. Positional, and the cursor is
# kept with the connection (below): each saved a few microseconds of Python per call.
_PG_BOX_SQL = {
    n: "SELECT provider_id, user_id, lat, lon, radius_km FROM provider_coverage "
       "WHERE category_id = %s "
       "AND lat_row = ANY(ARRAY(SELECT generate_series(%s::int, %s::int))) AND ("
       + " OR ".join(["lon BETWEEN %s AND %s"] * n)
       + ") AND 2 * 6371.0088 * asin(least(1.0, sqrt(power(sin(radians(lat - %s) / 2), 2) "
         "+ cos(radians(lat)) * %s * power(sin(radians(lon - %s) / 2), 2)))) "
         f"<= least(radius_km, %s) + {_SQL_SLACK_KM!r}"
    for n in (1, 2)
}


def _pg_rows(connection: Any, category_id: int, cell: Point, radius_km: float,
             box: SearchBox) -> list[Any]:
    """(provider_id, user_id, lat, lon, radius_km) of the box's rows within reach, give or
    take the slack (see above)."""
    args: list[Any] = [category_id, box.rows[0], box.rows[-1]]
    for lo, hi in box.lon_ranges:
        args += (lo, hi)
    args += (cell.lat, math.cos(math.radians(cell.lat)), cell.lon, radius_km)
    # One binary cursor per DBAPI connection, kept in the pool's per-connection ``info`` (it
    # lives and dies with that connection, which serves one session at a time).
    info = connection.connection.info
    cursor = info.get("matching_cursor")
    if cursor is None or cursor.closed:
        cursor = info["matching_cursor"] = connection.connection.driver_connection.cursor(
            binary=True)
    cursor.execute(_PG_BOX_SQL[len(box.lon_ranges)], args, prepare=True)
    return cursor.fetchall()


def _uses_psycopg(connection: Any) -> bool:
    return bool(connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg")


# On SQLite it goes to the sqlite3 connection underneath (in the session's
# transaction): SQLAlchemy's result objects cost ~2 us a row, most of a fan-out's matching
# when a need's box holds a thousand providers. One text per shape (latitude rows, longitude
# ranges), kept.
_SQLITE_BOX_SQL: dict[tuple[int, int], str] = {}


def _sqlite_box_sql(rows: int, lon_ranges: int) -> str:
    sql = _SQLITE_BOX_SQL.get((rows, lon_ranges))
    if sql is None:
        sql = _SQLITE_BOX_SQL[rows, lon_ranges] = (
            "SELECT provider_id, user_id, lat, lon, radius_km FROM provider_coverage "
            f"WHERE category_id = ? AND lat_row IN ({', '.join('?' * rows)}) AND ("
            + " OR ".join(["lon BETWEEN ? AND ?"] * lon_ranges) + ")")
    return sql


def _box_rows(connection: Any, category_id: int, box: SearchBox) -> list[Any]:
    """Every coverage row in the box, on SQLite (PostgreSQL's path is ``_pg_rows``: the app
    reaches PostgreSQL through psycopg only, ``config.normalise_database_url``)."""
    args: list[Any] = [category_id, *box.rows]
    for lo, hi in box.lon_ranges:
        args += (lo, hi)
    sql = _sqlite_box_sql(len(box.rows), len(box.lon_ranges))
    return connection.connection.driver_connection.execute(sql, args).fetchall()


def providers_for(category_id: int, lat: float, lon: float, radius_km: float,
                  exclude_user_id: int | None = None,
                  exclude_provider_ids: frozenset[int] | set[int] = frozenset()) -> list[Match]:
    """Active providers serving the category whose own radius covers the point's cell and whose
    base cell lies within ``radius_km`` of it. The need's radius bounds the search box."""
    cell = grid_cell_centre(lat, lon)
    box = search_box(cell.lat, cell.lon, radius_km)
    connection = db.session.connection()
    rows = (_pg_rows(connection, category_id, cell, radius_km, box) if _uses_psycopg(connection)
            else _box_rows(connection, category_id, box))
    matched = []
    # providers share cells (and radii): the rule is decided once per (cell, radius)
    decided: dict[tuple[float, float, float], Point | None] = {}
    for pid, uid, plat, plon, pradius in rows:
        if uid == exclude_user_id or pid in exclude_provider_ids:
            continue
        key = (plat, plon, pradius)
        if key in decided:
            base_cell = decided[key]
        else:
            base_cell = Point(plat, plon)
            if not in_reach(base_cell, pradius, cell, radius_km):
                base_cell = None
            decided[key] = base_cell
        if base_cell is not None:
            matched.append(Match(pid, uid, base_cell))
    return matched


_TAG_COVERAGE = ProviderTagCoverage.__table__.c


def _tag_box_query(lon_ranges: int) -> Any:
    """The matching box on the tag index, keyed by a kind and its tags (built once per number
    of longitude ranges: building it per call cost more than running it)."""
    lon = [_TAG_COVERAGE.lon.between(bindparam(f"lo{i}"), bindparam(f"hi{i}"))
           for i in range(lon_ranges)]
    return select(_TAG_COVERAGE.provider_id, _TAG_COVERAGE.user_id, _TAG_COVERAGE.lat,
                  _TAG_COVERAGE.lon, _TAG_COVERAGE.radius_km).where(
        _TAG_COVERAGE.kind == bindparam("kind"),
        _TAG_COVERAGE.tag.in_(bindparam("tags", expanding=True)),
        _TAG_COVERAGE.lat_row.in_(bindparam("rows", expanding=True)),
        or_(*lon),
    )


_TAG_BOX_QUERIES = {1: _tag_box_query(1), 2: _tag_box_query(2)}
# As _PG_BOX_SQL: straight to psycopg on PostgreSQL, one text per shape, binary results.
_PG_TAG_BOX_SQL = {
    n: "SELECT provider_id, user_id, lat, lon, radius_km FROM provider_tag_coverage "
       "WHERE kind = %s AND tag = ANY(%s) AND lat_row = ANY(%s) AND ("
       + " OR ".join(["lon BETWEEN %s AND %s"] * n) + ")"
    for n in (1, 2)
}


def _tag_box_rows(kind: str, tags: list[str], box: Any) -> list[Any]:
    connection = db.session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        args: list[Any] = [kind, tags, list(box.rows)]
        for lo, hi in box.lon_ranges:
            args += [lo, hi]
        driver = connection.connection.driver_connection
        with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
            cursor.execute(_PG_TAG_BOX_SQL[len(box.lon_ranges)], args)
            return list(cursor.fetchall())
    params: dict[str, Any] = {"kind": kind, "tags": tags, "rows": list(box.rows)}
    for i, (lo, hi) in enumerate(box.lon_ranges):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
    return list(connection.execute(_TAG_BOX_QUERIES[len(box.lon_ranges)], params).all())


def providers_for_tags(tags: list[tuple[str, str]], lat: float, lon: float, radius_km: float,
                       exclude_user_id: int | None = None,
                       exclude_provider_ids: frozenset[int] | set[int] = frozenset()
                       ) -> list[Match]:
    """Active providers subscribed to any of ``tags`` ((kind, tag) pairs: a need's intent and
    topic signals) under the same distance rule as ``providers_for``, each once: one box query
    per kind on ``provider_tag_coverage``'s index (kind, tag, lat_row, lon, ...)."""
    cell = grid_cell_centre(lat, lon)
    box = search_box(cell.lat, cell.lon, radius_km)
    by_kind: dict[str, list[str]] = {}
    for kind, tag in tags:
        by_kind.setdefault(kind, []).append(tag)
    matched: dict[int, Match] = {}
    for kind, names in by_kind.items():
        for pid, uid, plat, plon, pradius in _tag_box_rows(kind, names, box):
            if uid == exclude_user_id or pid in exclude_provider_ids or pid in matched:
                continue
            base_cell = Point(plat, plon)
            if in_reach(base_cell, pradius, cell, radius_km):
                matched[pid] = Match(pid, uid, base_cell)
    return list(matched.values())


def sync_coverage(provider: Provider) -> None:
    """Rewrite the provider's index rows from the profile (in the caller's transaction): the
    base's grid-cell centre, never the base itself."""
    db.session.execute(
        ProviderCoverage.__table__.delete().where(ProviderCoverage.provider_id == provider.id)
    )
    if provider.takes_work:
        cell = grid_cell_centre(provider.base_lat, provider.base_lon)
        db.session.add_all(
            ProviderCoverage(provider_id=provider.id, user_id=provider.user_id, category_id=c.id,
                             lat_row=lat_row(cell.lat), lat=cell.lat, lon=cell.lon,
                             radius_km=provider.radius_km)
            for c in provider.categories
        )
    sync_tag_coverage(provider)


def sync_tag_coverage(provider: Provider) -> None:
    """``sync_coverage`` for the provider's tag subscriptions."""
    db.session.execute(ProviderTagCoverage.__table__.delete()
                       .where(ProviderTagCoverage.provider_id == provider.id))
    if provider.takes_work and provider.tags:
        cell = grid_cell_centre(provider.base_lat, provider.base_lon)
        db.session.add_all(
            ProviderTagCoverage(provider_id=provider.id, user_id=provider.user_id, kind=t.kind,
                                tag=t.tag, lat_row=lat_row(cell.lat), lat=cell.lat, lon=cell.lon,
                                radius_km=provider.radius_km)
            for t in provider.tags
        )
