"""The spatial matching query: which providers a need is posted to (and so the reach preview's
count). It reads an index-backed box (``geo.search_box``) and then applies the exact rule
(``geo.in_reach``), so results equal a brute-force check of every provider.

Both sides are grid-cell centres: the index stores each provider's base *cell* and the box is
drawn around the need's cell, so who is matched -- which a customer can count before posting
and a provider can watch -- depends on nothing finer than the cells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select

from marketplace.extensions import db
from marketplace.geo import Point, SearchBox, grid_cell_centre, in_reach, lat_row, search_box
from marketplace.providers.models import Provider, ProviderCoverage, ProviderTagCoverage


def box_filter(box: SearchBox, row_col: Any, lon_col: Any) -> Any:
    lon_clause = or_(*(lon_col.between(lo, hi) for lo, hi in box.lon_ranges))
    return and_(row_col.in_(box.rows), lon_clause)


@dataclass(frozen=True)
class Match:
    """A matched provider; ``cell`` is the centre of their base's grid cell (all the index
    holds, and all a distance band may be computed from)."""

    provider_id: int
    user_id: int
    cell: Point


_COVERAGE = ProviderCoverage.__table__.c


def _box_query(lon_ranges: int) -> Any:
    """The matching SELECT for a box with one or two longitude ranges, built once: building
    it per call cost more than running it (see docs/performance.md)."""
    lon = [_COVERAGE.lon.between(bindparam(f"lo{i}"), bindparam(f"hi{i}"))
           for i in range(lon_ranges)]
    return select(_COVERAGE.provider_id, _COVERAGE.user_id, _COVERAGE.lat, _COVERAGE.lon,
                  _COVERAGE.radius_km).where(
        _COVERAGE.category_id == bindparam("category_id"),
        _COVERAGE.lat_row.in_(bindparam("rows", expanding=True)),
        or_(*lon),
    )


_BOX_QUERIES = {1: _box_query(1), 2: _box_query(2)}

# On PostgreSQL the same query goes straight to psycopg (inside the session's transaction):
# one statement text per shape, so psycopg prepares it after a few runs, and binary results.
# SQLAlchemy's per-execution overhead was most of the cost there (docs/performance.md).
_PG_BOX_SQL = {
    n: "SELECT provider_id, user_id, lat, lon, radius_km FROM provider_coverage "
       "WHERE category_id = %s AND lat_row = ANY(%s) AND ("
       + " OR ".join(["lon BETWEEN %s AND %s"] * n) + ")"
    for n in (1, 2)
}


def _box_rows(category_id: int, box: Any) -> list[Any]:
    connection = db.session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        args: list[Any] = [category_id, list(box.rows)]
        for lo, hi in box.lon_ranges:
            args += [lo, hi]
        driver = connection.connection.driver_connection
        with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
            cursor.execute(_PG_BOX_SQL[len(box.lon_ranges)], args)
            return list(cursor.fetchall())
    params: dict[str, Any] = {"category_id": category_id, "rows": list(box.rows)}
    for i, (lo, hi) in enumerate(box.lon_ranges):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
    return list(connection.execute(_BOX_QUERIES[len(box.lon_ranges)], params).all())


def providers_for(category_id: int, lat: float, lon: float, radius_km: float,
                  exclude_user_id: int | None = None,
                  exclude_provider_ids: frozenset[int] | set[int] = frozenset()) -> list[Match]:
    """Active providers serving the category whose own radius covers the point's cell and whose
    base cell lies within ``radius_km`` of it. The need's radius bounds the search box."""
    cell = grid_cell_centre(lat, lon)
    matched = []
    for pid, uid, plat, plon, pradius in _box_rows(category_id,
                                                   search_box(cell.lat, cell.lon, radius_km)):
        if uid == exclude_user_id or pid in exclude_provider_ids:
            continue
        base_cell = Point(plat, plon)
        if in_reach(base_cell, pradius, cell, radius_km):
            matched.append(Match(pid, uid, base_cell))
    return matched


_TAG_COVERAGE = ProviderTagCoverage.__table__.c


def _tag_box_query(lon_ranges: int) -> Any:
    """``_box_query`` on the tag index: the same box, keyed by a kind and its tags."""
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
