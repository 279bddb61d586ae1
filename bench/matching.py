"""Matching benchmark: the spatial query that decides which providers see a need.

Run from the repository root::

    .venv/bin/python -m bench.matching [--providers 1000000] [--queries 2000] \
        [--backends sqlite,postgresql] [--area us|square] [--scan-queries 50]

Per backend it builds a throw-away database with the migrations (a temporary SQLite file; a new
PostgreSQL database on ``TEST_POSTGRES_URL``'s server, dropped at the end), bulk-loads N
synthetic providers (users, providers, provider_categories, provider_coverage), runs ANALYZE,
then times the real ``marketplace.providers.matching.providers_for`` on random needs and
compares it, in the same run, with a full scan that does not use the spatial index. The
scanned subset doubles as a correctness check: both must return the same provider ids.

Synthetic data (seeded, so every run sees the same rows):
- area ``us`` (default): lat 25..49 N, lon 124..67 W, a contiguous-US-sized box (about
  2,670 km north-south by 5,100..3,700 km east-west, 13.4 million km2); ``square``: a
  1,000 x 1,000 km box around 40 N (9.0 deg of latitude by 11.7 deg of longitude), 13x denser;
- points uniform per km2 (latitude drawn through sin(lat));
- 20 categories (the seeded ``categories`` table); each provider serves 1..3 of them;
- provider service radius and need radius uniform 1..50 km.

Besides the real function, a few private variants of the same query are timed to show where
the time goes (ORM statement building and result handling versus the database itself); they
never replace the real figures.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, text

from bench.common import load_note, out
from bench.scratch import scratch_database

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

AREAS = {
    # (lat_lo, lat_hi, lon_lo, lon_hi)
    "us": (25.0, 49.0, -124.0, -67.0),
    "square": (35.5036, 44.4964, -5.8660, 5.8660),  # ~1,000 km x ~1,000 km around 40 N
}
RADIUS_KM = (1.0, 50.0)
CATEGORIES_PER_PROVIDER = (1, 3)
TIMESTAMP = datetime(2026, 1, 1)
SQLITE_TIMESTAMP = "2026-01-01 00:00:00.000000"  # SQLAlchemy's SQLite DateTime storage format
BATCH = 100_000
TARGET_P50_MS = 0.2  # issue 12 (was 0.3)
TARGET_RATIO = 100.0


# --------------------------------------------------------------------------------------------
# synthetic data


@dataclass(frozen=True)
class Need:
    category_id: int
    lat: float
    lon: float
    radius_km: float


def random_point(rng: random.Random, area: tuple[float, float, float, float]) -> tuple[float, float]:
    """Uniform per unit of surface inside the lat/lon box."""
    lat_lo, lat_hi, lon_lo, lon_hi = area
    s = rng.uniform(math.sin(math.radians(lat_lo)), math.sin(math.radians(lat_hi)))
    return math.degrees(math.asin(s)), rng.uniform(lon_lo, lon_hi)


def provider_batches(n: int, seed: int, area: tuple[float, float, float, float],
                     category_ids: Sequence[int]) -> Iterator[list[tuple[int, float, float, float,
                                                                             list[int]]]]:
    """(id, lat, lon, radius_km, categories) for ids 1..n, in batches."""
    rng = random.Random(seed)
    batch = []
    for pid in range(1, n + 1):
        lat, lon = random_point(rng, area)
        radius = rng.uniform(*RADIUS_KM)
        cats = rng.sample(category_ids, rng.randint(*CATEGORIES_PER_PROVIDER))
        batch.append((pid, lat, lon, radius, cats))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def random_needs(count: int, seed: int, area: tuple[float, float, float, float],
                 category_ids: Sequence[int]) -> list[Need]:
    rng = random.Random(seed)
    needs = []
    for _ in range(count):
        lat, lon = random_point(rng, area)
        needs.append(Need(rng.choice(category_ids), lat, lon, rng.uniform(*RADIUS_KM)))
    return needs


# --------------------------------------------------------------------------------------------
# loading


def rows_for(batch: list[tuple[int, float, float, float, list[int]]], ts: Any,
             active: Any) -> tuple[list[tuple], list[tuple], list[tuple], list[tuple]]:
    from marketplace.geo import grid_cell_centre, lat_row

    users, providers, links, coverage = [], [], [], []
    for pid, lat, lon, radius, cats in batch:
        users.append((pid, f"p{pid}@bench.invalid", f"Provider {pid}", None, "!", ts))
        providers.append((pid, pid, f"p{pid}", f"Provider {pid}", "", lat, lon, radius, active,
                          ts, ts))
        cell = grid_cell_centre(lat, lon)  # the index holds the base's cell, as sync_coverage
        row = lat_row(cell.lat)
        for cid in cats:
            links.append((pid, cid))
            coverage.append((pid, cid, pid, row, cell.lat, cell.lon, radius))
    return users, providers, links, coverage


COLUMNS = {
    "users": "id, email, name, phone, password_hash, created_at",
    "providers": "id, user_id, handle, display_name, bio, base_lat, base_lon, radius_km, active, "
                 "created_at, updated_at",
    "provider_categories": "provider_id, category_id",
    "provider_coverage": "provider_id, category_id, user_id, lat_row, lat, lon, radius_km",
}


def load_sqlite(engine: Any, n: int, seed: int, area: Any, category_ids: list[int]) -> int:
    """executemany on the raw sqlite3 connection, one transaction; returns coverage rows.

    Foreign-key enforcement is off while loading (rows are consistent by construction; the
    constraints stay declared) and durability too (a throw-away file)."""
    raw = engine.raw_connection()
    try:
        con = raw.driver_connection
        con.execute("PRAGMA foreign_keys=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-2000000")  # 2 GB page cache while the indexes grow
        coverage_rows = 0
        con.execute("BEGIN")
        for batch in provider_batches(n, seed, area, category_ids):
            users, providers, links, coverage = rows_for(batch, SQLITE_TIMESTAMP, 1)
            for table, rows in (("users", users), ("providers", providers),
                                ("provider_categories", links), ("provider_coverage", coverage)):
                cols = COLUMNS[table]
                marks = ", ".join("?" * len(cols.split(",")))
                con.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
            coverage_rows += len(coverage)
        con.execute("COMMIT")
        con.execute("ANALYZE")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA cache_size=-2000")  # back to the default for the measurements
        con.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()
    return coverage_rows


def load_postgresql(url: str, n: int, seed: int, area: Any, category_ids: list[int]) -> int:
    """COPY through psycopg, one transaction, then VACUUM ANALYZE (the visibility map lets the
    covering index answer without heap visits, as autovacuum would arrange in production).

    Foreign-key triggers are skipped while loading (``session_replication_role = replica``,
    2.6x faster; rows are consistent by construction and the constraints stay declared)."""
    import psycopg

    coverage_rows = 0
    with psycopg.connect(url) as con:
        with con.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")
            for batch in provider_batches(n, seed, area, category_ids):
                tables = rows_for(batch, TIMESTAMP, True)
                for table, rows in zip(COLUMNS, tables, strict=True):
                    with cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(r)
                coverage_rows += len(tables[3])
            for table in ("users", "providers"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", (n,))
        con.commit()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("VACUUM (ANALYZE) users, providers, provider_categories, provider_coverage")
    return coverage_rows


# --------------------------------------------------------------------------------------------
# the queries


def box_statement(need: Need) -> Any:
    """The box query ``providers_for`` runs, as an ORM select with the values of one need (for
    candidate counts, EXPLAIN, and the "built per call" variant)."""
    from marketplace.geo import search_box
    from marketplace.providers.matching import box_filter
    from marketplace.providers.models import ProviderCoverage as PC

    box = search_box(*_cell(need), need.radius_km)
    return select(PC.provider_id, PC.user_id, PC.lat, PC.lon, PC.radius_km).where(
        PC.category_id == need.category_id, box_filter(box, PC.lat_row, PC.lon))


def _cell(need: Need) -> tuple[float, float]:
    from marketplace.geo import grid_cell_centre

    return tuple(grid_cell_centre(need.lat, need.lon))  # type: ignore[return-value]


def scan_sql(dialect: str) -> str:
    """All providers serving the category, great-circle check in SQL on the true bases, no
    spatial index. The SQL test is widened by both cells' slack and 1 m; the same Python check
    as ``providers_for`` (cell to cell) then decides, so neither the cells nor float
    differences between SQL and Python maths can cause false mismatches."""
    least = "LEAST" if dialect == "postgresql" else "min"
    h = ("power(sin(radians(:lat - p.base_lat) / 2), 2) + cos(radians(p.base_lat)) "
         "* cos(radians(:lat)) * power(sin(radians(:lon - p.base_lon) / 2), 2)")
    return (
        "SELECT p.id, p.user_id, p.base_lat, p.base_lon, p.radius_km "
        "FROM providers p JOIN provider_categories pc ON pc.provider_id = p.id "
        f"WHERE pc.category_id = :cat AND p.active "
        f"AND 2 * {6371.0088} * asin({least}(1.0, sqrt({h}))) <= {least}(p.radius_km, :r) + 3.001"
    )


def scan_match(session: Any, sql: Any, need: Need) -> list[int]:
    from marketplace.geo import grid_cell_centre, haversine_km

    out = []
    rows = session.execute(sql, {"cat": need.category_id, "lat": need.lat, "lon": need.lon,
                                 "r": need.radius_km})
    clat, clon = _cell(need)
    for pid, _uid, plat, plon, pradius in rows:
        km = haversine_km(*grid_cell_centre(plat, plon), clat, clon)
        if km <= pradius and km <= need.radius_km:
            out.append(pid)
    return out


# Private variants, to attribute the time and to try the fix. The headline figures always come
# from the real ``providers_for``.


def exact_check(rows: Any, need: Need) -> list[tuple]:
    """The same great-circle rule as ``providers_for`` (rows hold base cells)."""
    from marketplace.geo import haversine_km

    out = []
    (lat, lon), radius_km = _cell(need), need.radius_km
    for pid, uid, plat, plon, pradius in rows:
        km = haversine_km(plat, plon, lat, lon)
        if km <= pradius and km <= radius_km:
            out.append((pid, uid, plat, plon))
    return out


def variant_core(need: Need) -> list[tuple]:
    """Same statement built per call, but from Core table columns and executed on the session's
    connection: removes the ORM layer only."""
    from marketplace.extensions import db
    from marketplace.geo import search_box
    from marketplace.providers.matching import box_filter
    from marketplace.providers.models import ProviderCoverage

    t = ProviderCoverage.__table__.c
    box = search_box(*_cell(need), need.radius_km)
    stmt = select(t.provider_id, t.user_id, t.lat, t.lon, t.radius_km).where(
        t.category_id == need.category_id, box_filter(box, t.lat_row, t.lon))
    return exact_check(db.session.connection().execute(stmt), need)


class PrebuiltVariant:
    """What ``providers_for`` runs on SQLite: the statement is built once per box shape (one or two
    longitude ranges) from Core columns, the latitude rows are one expanding bind parameter,
    and each call only passes parameters; rows are fetched in one go (``.all()``, a single
    fetchall) rather than one fetchone per row. Nothing is constructed or ORM-processed per
    call."""

    def __init__(self, via: str):
        from sqlalchemy import bindparam

        from marketplace.providers.models import ProviderCoverage

        t = ProviderCoverage.__table__.c
        self.via = via
        self.stmts = {}
        for nranges in (1, 2):
            lon = [t.lon.between(bindparam(f"lo{i}"), bindparam(f"hi{i}"))
                   for i in range(nranges)]
            self.stmts[nranges] = select(
                t.provider_id, t.user_id, t.lat, t.lon, t.radius_km).where(
                t.category_id == bindparam("cat"),
                t.lat_row.in_(bindparam("rows", expanding=True)),
                or_(*lon) if nranges > 1 else lon[0])

    def __call__(self, need: Need) -> list[tuple]:
        from marketplace.extensions import db
        from marketplace.geo import search_box

        box = search_box(*_cell(need), need.radius_km)
        params: dict[str, Any] = {"cat": need.category_id, "rows": list(box.rows)}
        for i, (lo, hi) in enumerate(box.lon_ranges):
            params[f"lo{i}"] = lo
            params[f"hi{i}"] = hi
        stmt = self.stmts[len(box.lon_ranges)]
        if self.via == "session":
            rows = db.session.execute(stmt, params).all()
        else:
            rows = db.session.connection().execute(stmt, params).all()
        return exact_check(rows, need)


class DriverSqlVariant:
    """SQL text cached per box shape, run with ``Connection.exec_driver_sql``: SQLAlchemy's
    connection and transaction handling without any statement compilation."""

    def __init__(self, dialect: str):
        self.raw = RawVariant(dialect)

    def __call__(self, need: Need) -> list[tuple]:
        from marketplace.extensions import db
        from marketplace.geo import search_box

        box = search_box(*_cell(need), need.radius_km)
        params: list[Any] = [need.category_id, *box.rows]
        for lo, hi in box.lon_ranges:
            params += (lo, hi)
        sql = self.raw.sql(len(box.rows), len(box.lon_ranges))
        return exact_check(db.session.connection().exec_driver_sql(sql, tuple(params)).all(),
                           need)


class RawVariant:
    """Hand-written SQL text per box shape, positional parameters, the raw DB-API cursor of the
    session's connection: the floor of what any Python code can do with this query."""

    def __init__(self, dialect: str, prepare: bool | None = None, binary: bool = False):
        self.dialect = dialect
        self.prepare = prepare
        self.binary = binary
        self.ph = "%s" if dialect == "postgresql" else "?"
        self.cache: dict[tuple[int, int], str] = {}

    def sql(self, nrows: int, nranges: int) -> str:
        key = (nrows, nranges)
        s = self.cache.get(key)
        if s is None:
            ph = self.ph
            lon = " OR ".join([f"lon BETWEEN {ph} AND {ph}"] * nranges)
            s = (f"SELECT provider_id, user_id, lat, lon, radius_km FROM provider_coverage "
                 f"WHERE category_id = {ph} AND lat_row IN ({', '.join([ph] * nrows)}) "
                 f"AND ({lon})")
            self.cache[key] = s
        return s

    def __call__(self, need: Need) -> list[tuple]:
        from marketplace.extensions import db
        from marketplace.geo import search_box

        box = search_box(*_cell(need), need.radius_km)
        params: list[Any] = [need.category_id, *box.rows]
        for lo, hi in box.lon_ranges:
            params += (lo, hi)
        dbapi = db.session.connection().connection.driver_connection
        sql = self.sql(len(box.rows), len(box.lon_ranges))
        if self.dialect == "postgresql":
            cur = dbapi.execute(sql, params, prepare=self.prepare, binary=self.binary)
        else:
            cur = dbapi.execute(sql, params)
        return exact_check(cur.fetchall(), need)


class PgPreviousVariant:
    """``providers_for`` on PostgreSQL as it shipped until 2026-12-02: the latitude rows sent as
    one array parameter (``lat_row = ANY(%s)``), every row of the box returned, the distance
    test in Python. With the array parameter PostgreSQL's plan cache kept choosing a custom
    plan, so it planned the query on every call; ``scalar_rows`` generates the rows in SQL
    from the first and last instead (one generic plan), still testing in Python."""

    def __init__(self, scalar_rows: bool = False):
        rows = ("ANY(ARRAY(SELECT generate_series(%s::int, %s::int)))" if scalar_rows
                else "ANY(%s)")
        self.scalar_rows = scalar_rows
        self.sql = {n: "SELECT provider_id, user_id, lat, lon, radius_km FROM provider_coverage "
                       f"WHERE category_id = %s AND lat_row = {rows} AND ("
                       + " OR ".join(["lon BETWEEN %s AND %s"] * n) + ")" for n in (1, 2)}

    def __call__(self, need: Need) -> list[tuple]:
        from marketplace.extensions import db
        from marketplace.geo import search_box

        box = search_box(*_cell(need), need.radius_km)
        args: list[Any] = [need.category_id]
        args += [box.rows[0], box.rows[-1]] if self.scalar_rows else [list(box.rows)]
        for lo, hi in box.lon_ranges:
            args += [lo, hi]
        driver = db.session.connection().connection.driver_connection
        with driver.cursor(binary=True) as cursor:
            cursor.execute(self.sql[len(box.lon_ranges)], args)
            return exact_check(cursor.fetchall(), need)


# --------------------------------------------------------------------------------------------
# measuring


class ServerClock:
    """CPU time consumed by the PostgreSQL backend serving the session's connection, read from
    /proc (so only when the server runs on this host); 0 for SQLite, which runs in-process and
    is part of the client's CPU time. Keep the session's transaction open while using it."""

    def __init__(self, backend: str):
        from marketplace.extensions import db

        self.path = None
        if backend == "postgresql":
            pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
            path = f"/proc/{pid}/schedstat"
            if os.path.exists(path):
                self.path = path

    def ns(self) -> int:
        if self.path is None:
            return 0
        with open(self.path) as f:
            return int(f.read().split()[0])


@dataclass
class Timing:
    wall: list[int]
    cpu: list[int]
    server: list[int]
    results: list[Any]

    def stats(self) -> dict[str, float]:
        s = sorted(self.wall)
        return {"p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99),
                "mean": statistics.fmean(s) / 1e6, "max": s[-1] / 1e6,
                "cpu": statistics.fmean(self.cpu) / 1e6,
                "server": statistics.fmean(self.server) / 1e6}


def pct(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    k = max(0, min(len(sorted_ns) - 1, math.ceil(q / 100 * len(sorted_ns)) - 1))
    return sorted_ns[k] / 1e6


def time_calls(fns: dict[str, Callable[[Need], Any]], needs: Sequence[Need],
               clock: ServerClock | None = None) -> dict[str, Timing]:
    """Wall time, client CPU time and server CPU time of each call. With several functions
    the calls are interleaved need by need (rotating the order), so a busy machine slows them
    all alike and the comparison stays fair."""
    names = list(fns)
    out = {k: Timing([], [], [], []) for k in names}
    perf, cpu = time.perf_counter_ns, time.process_time_ns
    server = clock.ns if clock is not None and clock.path else (lambda: 0)
    for i, need in enumerate(needs):
        j = i % len(names)
        for name in names[j:] + names[:j]:
            fn, t = fns[name], out[name]
            s0 = server()
            c0 = cpu()
            t0 = perf()
            r = fn(need)
            t1 = perf()
            c1 = cpu()
            s1 = server()
            t.wall.append(t1 - t0)
            t.cpu.append(c1 - c0)
            t.server.append(s1 - s0)
            t.results.append(r)
    return out


def fmt(stats: dict[str, float]) -> str:
    return (f"p50 {stats['p50']:.3f} ms  p90 {stats['p90']:.3f} ms  p99 {stats['p99']:.3f} ms  "
            f"mean {stats['mean']:.3f} ms")


# --------------------------------------------------------------------------------------------
# one backend


def make_app(url: str) -> Any:
    from marketplace import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                       "SECRET_KEY": "bench-secret", "REDIS_URL": None})


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    out(f"\n=== {backend} " + "=" * (70 - len(backend)))
    with scratch_database(backend, args.pg_admin_url, "bench-matching") as (url, where):
        return _load_and_measure(backend, args, url, where)


def _load_and_measure(backend: str, args: argparse.Namespace, url: str,
                      where: str) -> dict[str, Any]:
    import flask_migrate

    from marketplace.extensions import db

    raw_url = url if backend == "postgresql" else ""
    app = None
    try:
        app = make_app(url)
        with app.app_context():
            flask_migrate.upgrade()
            category_ids = [c for (c,) in db.session.execute(
                text("SELECT id FROM categories ORDER BY id"))]
            db.session.remove()
            area = AREAS[args.area]
            out(f"{where}; schema by the migrations; {len(category_ids)} seeded categories")
            t0 = time.perf_counter()
            if backend == "sqlite":
                cov = load_sqlite(db.engine, args.providers, args.seed, area, category_ids)
            else:
                cov = load_postgresql(raw_url, args.providers, args.seed, area, category_ids)
            load_s = time.perf_counter() - t0
            out(f"load: {args.providers:,} users + providers, {cov:,} provider_categories and "
                f"{cov:,} provider_coverage rows, then ANALYZE: {load_s:.1f} s")
            if args.tag_share > 0:
                t0 = time.perf_counter()
                tagged = load_tags(backend, raw_url, args, category_ids)
                out(f"load: {tagged:,} provider_tag_coverage rows (--tag-share "
                    f"{args.tag_share}): {time.perf_counter() - t0:.1f} s")
            gc.collect()
            result = measure(backend, args, category_ids, load_s)
            if args.tag_share > 0:
                with app.app_context():
                    result["tags"] = measure_tags(backend, args, category_ids)
                    db.session.remove()
            return result
    finally:
        if app is not None:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def show_plan(backend: str, need: Need) -> None:
    from marketplace.extensions import db

    if backend == "sqlite":
        stmt = box_statement(need)
        sql = str(stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
        out(f"plan of one box query ({need.radius_km:.0f} km need), EXPLAIN QUERY PLAN:")
        for row in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)).all():
            out(f"  {row[-1]}")
    else:
        from marketplace.geo import grid_cell_centre, search_box
        from marketplace.providers import matching

        cell = grid_cell_centre(need.lat, need.lon)
        box = search_box(cell.lat, cell.lon, need.radius_km)
        sql = matching._PG_BOX_SQL[len(box.lon_ranges)]
        args = [need.category_id, box.rows[0], box.rows[-1], *box.lon_ranges[0], cell.lat,
                math.cos(math.radians(cell.lat)), cell.lon, need.radius_km]
        out(f"plan of the query providers_for sends ({need.radius_km:.0f} km need, "
            "parameters bound), EXPLAIN (ANALYZE, BUFFERS):")
        driver = db.session.connection().connection.driver_connection
        for (line,) in driver.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, args).fetchall():
            out(f"  {line}")
    db.session.rollback()


def measure(backend: str, args: argparse.Namespace, category_ids: list[int],
            load_s: float) -> dict[str, Any]:
    from marketplace.extensions import db
    from marketplace.providers.matching import providers_for

    area = AREAS[args.area]
    needs = random_needs(args.queries, args.seed + 1, area, category_ids)
    warm = random_needs(args.warmup, args.seed + 2, area, category_ids)

    def real(n: Need) -> Any:
        return providers_for(n.category_id, n.lat, n.lon, n.radius_km)

    show_plan(backend, Need(needs[0].category_id, needs[0].lat, needs[0].lon, 25.0))

    # Warm up, then the real function on its own.
    time_calls({"real": real}, warm)
    db.session.rollback()
    gc.collect()
    out(f"machine: {load_note()}")
    clock = ServerClock(backend)
    timing = time_calls({"real": real}, needs, clock)["real"]
    db.session.rollback()
    idx = timing.stats()
    results = timing.results
    candidates = [len(db.session.execute(box_statement(n)).all()) for n in needs]
    db.session.rollback()
    matches = [len(r) for r in results]
    out(f"indexed: providers_for (the real function), {len(needs):,} random needs after "
        f"{len(warm)} warm-up ones:")
    out(f"  wall {fmt(idx)}  max {idx['max']:.3f} ms")
    cpu_line = f"  CPU per query (mean): client {idx['cpu']:.3f} ms"
    if backend == "sqlite":
        cpu_line += " (SQLite runs in-process, so this includes the database work)"
    else:
        waiting = max(0.0, idx["mean"] - idx["cpu"] - idx["server"])
        if clock.path:
            cpu_line += f", PostgreSQL backend {idx['server']:.3f} ms"
        cpu_line += f"; the rest of the mean wall time, {waiting:.3f} ms, is waiting"
    out(cpu_line)
    out(f"  candidates from the box: mean {statistics.fmean(candidates):.1f} "
        f"(max {max(candidates)}); matches: mean {statistics.fmean(matches):.2f} "
        f"(max {max(matches)}; {sum(m == 0 for m in matches) / len(matches):.0%} of needs match "
        f"nobody)")

    # Full scan baseline on a subset, and the correctness check against it.
    subset = needs[: args.scan_queries]
    scan = text(scan_sql(backend))
    scan_match(db.session, scan, subset[0])  # warm the caches the scan reads
    st = time_calls({"scan": lambda n: scan_match(db.session, scan, n)}, subset)["scan"]
    db.session.rollback()
    sc = st.stats()
    ratio = sc["p50"] / idx["p50"]
    mismatches = diff_ids = 0
    for i in range(len(subset)):
        a = {m.provider_id for m in results[i]}
        b = set(st.results[i])
        if a != b:
            mismatches += 1
            diff_ids += len(a ^ b)
    compared = sum(len(r) for r in st.results)
    out(f"full scan: providers JOIN provider_categories, great-circle test in SQL, no spatial "
        f"index; first {len(subset)} of the same needs:")
    out(f"  wall {fmt(sc)}")
    out(f"  ratio scan p50 / indexed p50: {ratio:,.0f}x")
    out(f"correctness on those {len(subset)} needs ({compared} matches in all): "
        + ("OK, identical provider sets" if mismatches == 0 else
           f"MISMATCH in {mismatches} needs ({diff_ids} provider ids differ)"))
    out(f"targets: p50 <= {TARGET_P50_MS} ms: {'met' if idx['p50'] <= TARGET_P50_MS else 'MISSED'}"
        f"; >= {TARGET_RATIO:.0f}x the scan: {'met' if ratio >= TARGET_RATIO else 'MISSED'}")

    variants: dict[str, dict[str, float]] = {}
    if args.variants:
        variants = compare_variants(backend, real, needs, warm, results, sc["p50"])
    db.session.remove()
    return {"load_s": load_s, "indexed": idx, "scan": sc, "ratio": ratio,
            "mismatches": mismatches, "candidates": statistics.fmean(candidates),
            "matches": statistics.fmean(matches), "variants": variants}


def compare_variants(backend: str, real: Callable[[Need], Any], needs: Sequence[Need],
                     warm: Sequence[Need], results: list[Any],
                     scan_p50: float) -> dict[str, dict[str, float]]:
    from marketplace.extensions import db

    fns: dict[str, Callable[[Need], Any]] = {
        "providers_for as shipped": real,
        "ORM select built per call, db.session.execute (the first version)":
            lambda n: exact_check(db.session.execute(box_statement(n)), n),
        "same select from Core columns on session.connection()": variant_core,
        "prebuilt Core statement, db.session.execute": PrebuiltVariant("session"),
        "prebuilt Core statement, session.connection()": PrebuiltVariant("connection"),
        "cached SQL text via Connection.exec_driver_sql": DriverSqlVariant(backend),
        "raw DB-API cursor of the session, cached SQL text": RawVariant(backend),
    }
    if backend == "postgresql":
        fns["same, binary result format (psycopg binary=True)"] = RawVariant(backend, binary=True)
        fns["same, text, never prepared (planning every call)"] = RawVariant(backend, False)
        fns["previous providers_for: rows as an array, distance in Python"] = PgPreviousVariant()
        fns["rows generated in SQL (scalar parameters), distance in Python"] = \
            PgPreviousVariant(scalar_rows=True)
    time_calls(fns, warm)
    db.session.rollback()
    gc.collect()
    clock = ServerClock(backend)
    timings = time_calls(fns, needs, clock)
    db.session.rollback()
    out(f"where the time goes: private variants, interleaved need by need ({load_note()}):")
    head = f"  {'variant':<66} {'p50':>7} {'p90':>7} {'p99':>7} {'client':>7}"
    head += f" {'server':>7}" if clock.path else ""
    out(head + f" {'scan/p50':>9}  same result")
    stats = {}
    for name, t in timings.items():
        s = t.stats()
        stats[name] = s
        same = all({r[0] for r in a} == {m.provider_id for m in b}
                   for a, b in zip(t.results, results, strict=True)) if name != next(
            iter(fns)) else True
        line = (f"  {name:<66} {s['p50']:7.3f} {s['p90']:7.3f} {s['p99']:7.3f} {s['cpu']:7.3f}")
        line += f" {s['server']:7.3f}" if clock.path else ""
        out(line + f" {scan_p50 / s['p50']:8,.0f}x  {'yes' if same else 'NO'}")
    shipped = ("cached SQL text on the raw sqlite3 connection" if backend == "sqlite"
               else "raw psycopg, binary results, scalar parameters, the distance test in SQL")
    out("  (ms; p50/p90/p99 wall time, client and server = mean CPU time per query; "
        f"providers_for runs {shipped} on {backend})")
    breakdown(backend, needs)
    return stats


def breakdown(backend: str, needs: Sequence[Need]) -> None:
    """Mean cost of each step of providers_for, timed separately."""
    from marketplace.extensions import db
    from marketplace.geo import grid_cell_centre, haversine_km, search_box
    from marketplace.providers.matching import _box_rows, _pg_rows

    perf = time.perf_counter_ns
    query = "box query + fetch" if backend == "sqlite" else \
        "box query with the distance test + fetch"
    steps = {"cell + search_box": 0, query: 0, "exact check": 0}
    for n in needs:
        t0 = perf()
        cell = grid_cell_centre(n.lat, n.lon)
        clat, clon = cell
        box = search_box(clat, clon, n.radius_km)
        t1 = perf()
        if backend == "sqlite":
            rows = list(_box_rows(db.session.connection(), n.category_id, box))
        else:
            rows = _pg_rows(db.session.connection(), n.category_id, cell, n.radius_km, box)
        t2 = perf()
        m = []
        for pid, uid, plat, plon, pradius in rows:
            km = haversine_km(plat, plon, clat, clon)
            if km <= pradius and km <= n.radius_km:
                m.append((pid, uid, plat, plon))
        t3 = perf()
        steps["cell + search_box"] += t1 - t0
        steps[query] += t2 - t1
        steps["exact check"] += t3 - t2
    db.session.rollback()
    parts = ", ".join(f"{k} {v / len(needs) / 1e6:.3f}" for k, v in steps.items())
    out(f"  steps of providers_for, mean wall ms: {parts}")
    if backend == "postgresql":
        n = needs[1]
        stmt = box_statement(Need(n.category_id, n.lat, n.lon, 25.0))
        sql = str(stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
        times = [line.strip() for (line,) in db.session.execute(
            text("EXPLAIN (ANALYZE, SUMMARY) " + sql)).all() if "Time:" in line]
        db.session.rollback()
        out(f"  server, one 25 km box query planned afresh: {'; '.join(times)} (psycopg prepares "
            f"a statement after 5 runs of the same text, so repeated shapes skip planning)")


# --------------------------------------------------------------------------------------------
# tag subscriptions (--tag-share): providers_for_tags, the union a need with ?intent tags adds


def tag_of(i: int) -> str:
    return f"tag{i}"


def tag_rows(n: int, seed: int, area: Any, category_ids: list[int], share: float,
             vocabulary: int) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """(provider_tags rows, provider_tag_coverage rows) per batch: the same providers as
    ``provider_batches`` (same seed), ``share`` of them subscribed to 1..3 intent tags drawn
    uniformly from ``vocabulary``."""
    from marketplace.geo import grid_cell_centre, lat_row

    rng = random.Random(seed + 7)
    for batch in provider_batches(n, seed, area, category_ids):
        tags, coverage = [], []
        for pid, lat, lon, radius, _cats in batch:
            if rng.random() >= share:
                continue
            cell = grid_cell_centre(lat, lon)
            for t in rng.sample(range(vocabulary), rng.randint(1, 3)):
                tags.append((pid, "intent", tag_of(t)))
                coverage.append((pid, "intent", tag_of(t), pid, lat_row(cell.lat), cell.lat,
                                 cell.lon, radius))
        yield tags, coverage


TAG_COLUMNS = {
    "provider_tags": "provider_id, kind, tag",
    "provider_tag_coverage": "provider_id, kind, tag, user_id, lat_row, lat, lon, radius_km",
}


def load_tags(backend: str, url: str, args: argparse.Namespace, category_ids: list[int]) -> int:
    """The tag rows, loaded like the rest (executemany / COPY), then ANALYZE."""
    from marketplace.extensions import db

    loaded = 0
    batches = tag_rows(args.providers, args.seed, AREAS[args.area], category_ids,
                       args.tag_share, args.tag_vocabulary)
    if backend == "sqlite":
        raw = db.engine.raw_connection()
        try:
            con = raw.driver_connection
            con.execute("PRAGMA foreign_keys=OFF")
            con.execute("BEGIN")
            for tags, coverage in batches:
                for table, rows in zip(TAG_COLUMNS, (tags, coverage), strict=True):
                    cols = TAG_COLUMNS[table]
                    marks = ", ".join("?" * len(cols.split(",")))
                    con.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
                loaded += len(coverage)
            con.execute("COMMIT")
            con.execute("ANALYZE")
            con.execute("PRAGMA foreign_keys=ON")
        finally:
            raw.close()
        return loaded
    import psycopg

    with psycopg.connect(url) as con:
        with con.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")
            for tags, coverage in batches:
                for table, rows in zip(TAG_COLUMNS, (tags, coverage), strict=True):
                    with cur.copy(f"COPY {table} ({TAG_COLUMNS[table]}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(r)
                loaded += len(coverage)
        con.commit()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("VACUUM (ANALYZE) provider_tags, provider_tag_coverage")
    return loaded


def measure_tags(backend: str, args: argparse.Namespace, category_ids: list[int]) -> dict[str, Any]:
    """What posting a need with 1..2 ?intent tags costs in matching: ``providers_for`` and
    ``providers_for_tags`` (the union), timed together and the tag query alone; checked against
    a scan of provider_tags JOIN providers (Python distance rule, cell to cell)."""
    from marketplace.extensions import db
    from marketplace.geo import grid_cell_centre, haversine_km
    from marketplace.providers.matching import providers_for, providers_for_tags

    rng = random.Random(args.seed + 9)
    area = AREAS[args.area]
    needs = random_needs(args.queries, args.seed + 1, area, category_ids)
    tags = [[("intent", tag_of(t)) for t in rng.sample(range(args.tag_vocabulary),
                                                        rng.randint(1, 2))] for _ in needs]
    by_need = {id(n): t for n, t in zip(needs, tags, strict=True)}

    def union(n: Need) -> Any:
        return (providers_for(n.category_id, n.lat, n.lon, n.radius_km),
                providers_for_tags(by_need[id(n)], n.lat, n.lon, n.radius_km))

    def tags_only(n: Need) -> Any:
        return providers_for_tags(by_need[id(n)], n.lat, n.lon, n.radius_km)

    time_calls({"union": union, "tags": tags_only}, needs[: args.warmup])
    db.session.rollback()
    timing = time_calls({"union": union, "tags": tags_only}, needs)
    db.session.rollback()
    u, t = timing["union"].stats(), timing["tags"].stats()
    found = [len(r) for r in timing["tags"].results]
    out(f"tag subscriptions: {args.tag_share:.0%} of providers subscribe to 1-3 of "
        f"{args.tag_vocabulary:,} intent tags; each need has 1-2:")
    out(f"  providers_for + providers_for_tags (the union posting a need runs): wall {fmt(u)}")
    out(f"  providers_for_tags alone: wall {fmt(t)}; tag matches mean "
        f"{statistics.fmean(found):.2f} (max {max(found)})")
    mismatches = 0
    scan = text("SELECT p.id, p.base_lat, p.base_lon, p.radius_km FROM provider_tags t "
                "JOIN providers p ON p.id = t.provider_id WHERE t.kind = 'intent' AND t.tag = :tag "
                "AND p.active")
    for n, result in list(zip(needs, timing["tags"].results, strict=True))[: args.scan_queries]:
        cell = grid_cell_centre(n.lat, n.lon)
        expected = set()
        for _kind, tag in by_need[id(n)]:
            for pid, plat, plon, pradius in db.session.execute(scan, {"tag": tag}):
                km = haversine_km(*grid_cell_centre(plat, plon), *cell)
                if km <= pradius and km <= n.radius_km:
                    expected.add(pid)
        mismatches += expected != {m.provider_id for m in result}
    db.session.rollback()
    out(f"  correctness against a scan of provider_tags on the first {args.scan_queries} needs: "
        + ("OK" if not mismatches else f"MISMATCH in {mismatches} needs"))
    out(f"  target: tag query p50 <= {TARGET_P50_MS} ms: "
        f"{'met' if t['p50'] <= TARGET_P50_MS else 'MISSED'}")
    return {"union": u, "tags": t, "mismatches": mismatches}


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--providers", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--scan-queries", type=int, default=50)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--area", choices=sorted(AREAS), default="us")
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    p.add_argument("--no-variants", dest="variants", action="store_false",
                   help="skip the private variants that attribute the time")
    p.add_argument("--tag-share", type=float, default=0.0,
                   help="share of providers subscribed to 1-3 intent tags (0: no tag rows)")
    p.add_argument("--tag-vocabulary", type=int, default=1000,
                   help="how many distinct intent tags subscriptions are drawn from")
    args = p.parse_args(argv)

    lat_lo, lat_hi, lon_lo, lon_hi = AREAS[args.area]
    out(f"matching benchmark: {args.providers:,} providers, area '{args.area}' "
        f"(lat {lat_lo}..{lat_hi}, lon {lon_lo}..{lon_hi}), 20 categories, "
        f"1-3 categories per provider, radii uniform {RADIUS_KM[0]:.0f}-{RADIUS_KM[1]:.0f} km; "
        f"{args.queries:,} timed needs, {args.scan_queries} scanned")
    import sqlite3

    import sqlalchemy

    out(f"python {sys.version.split()[0]}, SQLAlchemy {sqlalchemy.__version__}, SQLite "
        f"{sqlite3.sqlite_version}; {load_note()}")
    results = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        results[backend] = run_backend(backend, args)
    out("\n=== summary " + "=" * 50)
    for backend, r in results.items():
        i = r["indexed"]
        out(f"{backend:<11} load {r['load_s']:.0f} s | indexed p50 {i['p50']:.3f} ms, "
            f"p99 {i['p99']:.3f} ms | scan p50 {r['scan']['p50']:.1f} ms | "
            f"{r['ratio']:,.0f}x | correctness "
            f"{'OK' if r['mismatches'] == 0 else str(r['mismatches']) + ' mismatches'}")
        if "tags" in r:
            out(f"{'':<11} with tags: union p50 {r['tags']['union']['p50']:.3f} ms, p99 "
                f"{r['tags']['union']['p99']:.3f} ms | tag query p50 "
                f"{r['tags']['tags']['p50']:.3f} ms | correctness "
                f"{'OK' if not r['tags']['mismatches'] else 'MISMATCH'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
