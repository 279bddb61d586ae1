"""Trends benchmark: ``GET /api/v1/trends``'s query over a large history of needs.

Run from the repository root::

    .venv/bin/python -m bench.trends [--needs 1000000] [--queries 500] [--scan-queries 20] \\
        [--backends sqlite,postgresql]

Per backend: a throw-away database built by the migrations (a temporary SQLite file; a new
PostgreSQL database on ``TEST_POSTGRES_URL``'s server, dropped at the end); N synthetic needs
(seeded) bulk-loaded into ``users``, ``needs``, ``need_tags``, ``trend_hits`` and
``trend_groups`` (the counters ``signals.services.record`` maintains, aggregated the same
way); ANALYZE. Then the real
``signals.services.trends`` is timed on random queries (p50/p90/p99), and, in the same run, a
scan answers the same questions from ``needs JOIN need_tags`` (the needs of the window in the
area's box, tiled and floored in Python, as ``trends`` defines it): its timings, the ratio,
and whether both give identical answers (the exit status is 1 if not, or if p99 misses 50 ms).

Synthetic data: 50 cities at random in the contiguous US, needs around each (normal, sigma
12 km), uniform over the 30 days before the measured hour; 200,000 customers (a need's
customer drawn at random); 1-3 signals per need (intent 60%, topic 40%) from a vocabulary of
2,000 tags with a Zipf-like popularity (weight 1/rank); queries at a random city (jittered by up
to 10 km), radius 5/10/25/50 km, window 24h or 7d.
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
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.common import load_note, out, pct
from bench.scratch import scratch_database

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
DAYS = 30
CITIES = 50
CUSTOMERS = 200_000
VOCABULARY = 2000
BATCH = 50_000
TARGET_P99_MS = 50.0


def cities(seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(28, 47), rng.uniform(-120, -72)) for _ in range(CITIES)]


def tag_weights() -> list[float]:
    return [1.0 / (rank + 1) for rank in range(VOCABULARY)]


def sqlite_time(moment: datetime) -> str:
    return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(n: int, seed: int) -> Any:
    """Batches of (needs rows as dicts, need_tags rows) and the trend_hits counters overall."""
    from marketplace.geo import grid_cell_centre, km_cos, lat_row, unit_vector
    from marketplace.signals.services import hour_of, trend_col

    rng = random.Random(seed)
    places = cities(seed)
    weights = tag_weights()
    start = NOW - timedelta(days=DAYS)
    hits: dict[tuple[int, int, int, str, str, int], int] = defaultdict(int)
    batch_needs, batch_tags = [], []
    for nid in range(1, n + 1):
        clat, clon = rng.choice(places)
        lat = clat + rng.gauss(0, 12) / 111.2
        lon = clon + rng.gauss(0, 12) / (111.2 * math.cos(math.radians(clat)))
        created = start + timedelta(seconds=rng.uniform(0, DAYS * 86400 - 1))
        customer = rng.randint(1, CUSTOMERS)
        u = unit_vector(lat, lon)
        cell = grid_cell_centre(lat, lon)
        c = unit_vector(*cell)
        batch_needs.append({
            "id": nid, "customer_id": customer, "category_id": 1, "title": "Bench need",
            "description": "", "lat": lat, "lon": lon, "lat_row": lat_row(lat), "ux": u.x,
            "uy": u.y, "uz": u.z, "cell_ux": c.x, "cell_uy": c.y, "cell_uz": c.z,
            "reach_cos": km_cos(10), "radius_km": 10.0, "budget_amount": 1000,
            "budget_currency": "USD", "expires_at": created + timedelta(days=2),
            "offer_count": 0, "status": "expired", "audience": "nearby",
            "share_token": f"t{nid}", "created_at": created})
        chosen = []
        for _ in range(rng.randint(1, 3)):
            kind = "intent" if rng.random() < 0.6 else "topic"
            pair = (kind, f"tag{rng.choices(range(VOCABULARY), weights)[0]}")
            if pair not in chosen:
                chosen.append(pair)
        row, col, hour = lat_row(cell.lat), trend_col(cell.lon), hour_of(created)
        for position, (kind, tag) in enumerate(chosen):
            batch_tags.append((nid, kind, tag, position))
            hits[(row, col, hour, kind, tag, customer)] += 1
        if len(batch_needs) == BATCH:
            yield batch_needs, batch_tags
            batch_needs, batch_tags = [], []
    if batch_needs:
        yield batch_needs, batch_tags
    yield None, hits


def groups_and_hits(hits: dict[tuple[int, int, int, str, str, int], int]) -> tuple[
        list[tuple[int, int, int, str, str, int]], list[tuple[Any, ...]]]:
    """trend_groups and trend_hits rows as signals.services keeps them: each tile-tag's
    distinct customers under an id, and each hit naming its group and whether it is shared."""
    from marketplace.signals.models import SHARED_FROM

    customers: dict[tuple[int, int, str, str], set[int]] = defaultdict(set)
    for row, col, _hour, kind, tag, customer in hits:
        customers[(row, col, kind, tag)].add(customer)
    ids = {key: i for i, key in enumerate(sorted(customers), start=1)}
    groups = [(i, *key, len(customers[key])) for key, i in ids.items()]
    rows = []
    for (row, col, hour, kind, tag, customer), n in hits.items():
        key = (row, col, kind, tag)
        rows.append((row, col, hour, kind, tag, customer, n, ids[key],
                     len(customers[key]) >= SHARED_FROM))
    return groups, rows


GROUP_COLUMNS = "(id, cell_row, cell_col, kind, tag, customers)"
HIT_COLUMNS = "(cell_row, cell_col, hour, kind, tag, customer_id, needs, group_id, shared)"


def load(backend: str, url: str, engine: Any, n: int, seed: int) -> tuple[int, int]:
    """Bulk load (executemany on SQLite, COPY on PostgreSQL), one transaction, foreign keys
    off while loading only (rows consistent by construction); returns (tags, trend_hits)."""
    from marketplace.needs.models import Need

    columns = [c.name for c in Need.__table__.columns]
    users = [(i, f"c{i}@bench.invalid", f"Customer {i}", None, "!", NOW.replace(tzinfo=None))
             for i in range(1, CUSTOMERS + 1)]
    user_cols = "id, email, name, phone, password_hash, created_at"
    tags_loaded = hits_loaded = 0
    if backend == "sqlite":
        raw = engine.raw_connection()
        try:
            con = raw.driver_connection
            con.execute("PRAGMA foreign_keys=OFF")
            con.execute("PRAGMA synchronous=OFF")
            con.execute("BEGIN")
            con.executemany(f"INSERT INTO users ({user_cols}) VALUES (?, ?, ?, ?, ?, ?)",
                            [(*u[:5], sqlite_time(NOW)) for u in users])
            marks = ", ".join("?" * len(columns))
            for needs, tags in generate(n, seed):
                if needs is None:
                    groups, rows = groups_and_hits(tags)
                    con.executemany(f"INSERT INTO trend_groups {GROUP_COLUMNS} VALUES "
                                    "(?, ?, ?, ?, ?, ?)", groups)
                    con.executemany(f"INSERT INTO trend_hits {HIT_COLUMNS} VALUES "
                                    "(?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                    hits_loaded = len(rows)
                    break
                con.executemany(f"INSERT INTO needs ({', '.join(columns)}) VALUES ({marks})", [
                    tuple(sqlite_time(r[c]) if isinstance(r.get(c), datetime) else r.get(c)
                          for c in columns) for r in needs])
                con.executemany("INSERT INTO need_tags (need_id, kind, tag, position) "
                                "VALUES (?, ?, ?, ?)", tags)
                tags_loaded += len(tags)
            con.execute("COMMIT")
            con.execute("ANALYZE")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA foreign_keys=ON")
        finally:
            raw.close()
        return tags_loaded, hits_loaded
    import psycopg

    with psycopg.connect(url) as con:
        with con.cursor() as cur:
            cur.execute("SET LOCAL session_replication_role = replica")
            with cur.copy(f"COPY users ({user_cols}) FROM STDIN") as copy:
                for u in users:
                    copy.write_row(u)
            for needs, tags in generate(n, seed):
                if needs is None:
                    groups, rows = groups_and_hits(tags)
                    with cur.copy(f"COPY trend_groups {GROUP_COLUMNS} FROM STDIN") as copy:
                        for group in groups:
                            copy.write_row(group)
                    cur.execute("SELECT setval('trend_groups_id_seq', %s)", (len(groups),))
                    with cur.copy(f"COPY trend_hits {HIT_COLUMNS} FROM STDIN") as copy:
                        for hit in rows:
                            copy.write_row(hit)
                    hits_loaded = len(rows)
                    break
                with cur.copy(f"COPY needs ({', '.join(columns)}) FROM STDIN") as copy:
                    for r in needs:
                        copy.write_row(tuple(
                            r[c].replace(tzinfo=None) if isinstance(r.get(c), datetime)
                            else r.get(c) for c in columns))
                with cur.copy("COPY need_tags (need_id, kind, tag, position) FROM STDIN") as copy:
                    for t in tags:
                        copy.write_row(t)
                tags_loaded += len(tags)
        con.commit()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("VACUUM (ANALYZE) users, needs, need_tags, trend_hits, trend_groups")
    return tags_loaded, hits_loaded


def scan(lat: float, lon: float, radius_km: float, window: str, k: int) -> dict[str, Any]:
    """``trends``'s answer from the needs themselves: the needs of both windows in the area's
    box (widened by a cell: tiles are of cell centres), tiled and floored in Python."""
    from marketplace.extensions import db
    from marketplace.geo import grid_cell_centre, lat_row
    from marketplace.signals.services import TILE_DEG, WINDOWS, area, hour_of, trend_col

    hours = WINDOWS[window]
    until = hour_of(NOW)
    current = until - hours + 1
    where = area(lat, lon, radius_km)
    lat_lo = min(where.rows) * TILE_DEG - 90 - 0.02
    lat_hi = (max(where.rows) + 1) * TILE_DEG - 90 + 0.02
    boxes = [(lo * TILE_DEG - 180 - 0.03, (hi + 1) * TILE_DEG - 180 + 0.03)
             for lo, hi in where.cols]
    lon_sql = " OR ".join(f"n.lon BETWEEN :lo{i} AND :hi{i}" for i in range(len(boxes)))
    params: dict[str, Any] = {"lat_lo": lat_lo, "lat_hi": lat_hi,
                              "since": datetime.fromtimestamp((current - hours) * 3600, UTC)
                              .replace(tzinfo=None),
                              "until": datetime.fromtimestamp((until + 1) * 3600, UTC)
                              .replace(tzinfo=None)}
    for i, (lo, hi) in enumerate(boxes):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
    if db.engine.dialect.name == "sqlite":
        params["since"], params["until"] = (sqlite_time(params["since"]),
                                            sqlite_time(params["until"]))
    sql = text("SELECT t.kind, t.tag, n.customer_id, n.lat, n.lon, n.created_at FROM needs n "
               "JOIN need_tags t ON t.need_id = n.id WHERE t.kind <> 'mention' "
               "AND n.customer_id IS NOT NULL AND n.created_at >= :since "
               f"AND n.created_at < :until AND n.lat BETWEEN :lat_lo AND :lat_hi AND ({lon_sql})")
    tiles: dict[tuple[str, str, int, int], list[Any]] = defaultdict(lambda: [0, set(), 0, set()])
    for kind, tag, customer, nlat, nlon, created in db.session.execute(sql, params):
        cell = grid_cell_centre(nlat, nlon)
        row, col = lat_row(cell.lat), trend_col(cell.lon)
        if row not in where.rows or not any(lo <= col <= hi for lo, hi in where.cols):
            continue
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        hour = hour_of(created.replace(tzinfo=UTC))
        t = tiles[(kind, tag, row, col)]
        if hour >= current:
            t[0] += 1
            t[1].add(customer)
        else:
            t[2] += 1
            t[3].add(customer)
    return answer_from_tiles(tiles, k)


def answer_from_tiles(tiles: dict[tuple[str, str, int, int], list[Any]],
                      k: int) -> dict[str, Any]:
    """The ranked answer from per-tile tallies -- (kind, tag, row, col) -> [needs now,
    customers now, needs before, customers before] -- by the rules ``trends`` documents (the
    k floor per tile, buckets, top ``TOP`` per kind). Shared by ``scan`` and
    tests/test_trend_groups.py, which tally differently."""
    from marketplace.signals.services import TOP, bucket

    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (kind, tag, _r, _c), (now_n, now_who, before_n, before_who) in tiles.items():
        if len(now_who) >= k:
            totals[(kind, tag)][0] += now_n
        if len(before_who) >= k:
            totals[(kind, tag)][1] += before_n
    by_kind: dict[str, list[dict[str, Any]]] = {"intent": [], "topic": []}
    for (kind, tag), (count, before) in totals.items():
        shown = bucket(count, k)
        if shown:
            previous = bucket(before, k)
            by_kind[kind].append({"tag": tag, "count": shown, "previous": previous,
                                  "change": shown - previous})
    for items in by_kind.values():
        items.sort(key=lambda item: (-item["count"], item["tag"]))
        del items[TOP:]
    return {"intents": by_kind["intent"], "topics": by_kind["topic"]}


def stats(values: list[float]) -> str:
    return (f"p50 {pct(values, 50):.2f} ms  p90 {pct(values, 90):.2f} ms  "
            f"p99 {pct(values, 99):.2f} ms  mean {statistics.fmean(values):.2f} ms")


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    import flask_migrate

    from marketplace import create_app
    from marketplace.extensions import db
    from marketplace.signals.services import trends

    out(f"\n=== {backend} " + "=" * (70 - len(backend)))
    with scratch_database(backend, args.pg_admin_url, "bench-trends") as (url, where):
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                          "SECRET_KEY": "bench-secret", "REDIS_URL": None})
        try:
            with app.app_context():
                flask_migrate.upgrade()
                db.session.remove()
                out(f"{where}; schema by the migrations")
                t0 = time.perf_counter()
                tags, hits = load(backend, url, db.engine, args.needs, args.seed)
                out(f"load: {args.needs:,} needs, {tags:,} need_tags, {hits:,} trend_hits "
                    f"rows, {CUSTOMERS:,} customers, then ANALYZE: "
                    f"{time.perf_counter() - t0:.1f} s")
                gc.collect()
                rng = random.Random(args.seed + 1)
                places = cities(args.seed)
                queries = []
                for _ in range(args.queries):
                    clat, clon = rng.choice(places)
                    queries.append((clat + rng.uniform(-0.09, 0.09),
                                    clon + rng.uniform(-0.09, 0.09),
                                    rng.choice((5.0, 10.0, 25.0, 50.0)),
                                    rng.choice(("24h", "7d"))))
                k = app.config["TRENDS_MIN_CUSTOMERS"]
                for q in queries[:50]:  # warm-up
                    trends(*q, now=NOW)
                db.session.rollback()
                out(f"machine: {load_note()}")
                fast: list[float] = []
                answers = []
                for q in queries:
                    t0 = time.perf_counter_ns()
                    answers.append(trends(*q, now=NOW))
                    fast.append((time.perf_counter_ns() - t0) / 1e6)
                db.session.rollback()
                shown = [len(a["intents"]) + len(a["topics"]) for a in answers]
                out(f"counters: signals.services.trends (the real function), {len(queries)} "
                    f"queries: {stats(fast)}; tags shown per answer: mean "
                    f"{statistics.fmean(shown):.1f}")
                slow: list[float] = []
                mismatches = 0
                for q, answer in zip(queries[: args.scan_queries], answers, strict=False):
                    t0 = time.perf_counter_ns()
                    expected = scan(*q, k)
                    slow.append((time.perf_counter_ns() - t0) / 1e6)
                    mismatches += expected != {"intents": answer["intents"],
                                               "topics": answer["topics"]}
                db.session.rollback()
                ratio = pct(slow, 50) / pct(fast, 50)
                out(f"scan: needs JOIN need_tags in the box and windows, tiled in Python; first "
                    f"{len(slow)} of the same queries: {stats(slow)}")
                out(f"  ratio scan p50 / counters p50: {ratio:,.0f}x")
                out(f"correctness on those {len(slow)}: "
                    + ("OK, identical answers" if not mismatches else
                       f"MISMATCH in {mismatches} answers"))
                met = pct(fast, 99) < TARGET_P99_MS
                out(f"target: p99 < {TARGET_P99_MS:.0f} ms: {'met' if met else 'MISSED'}")
                return {"p50": pct(fast, 50), "p99": pct(fast, 99), "scan_p50": pct(slow, 50),
                        "ratio": ratio, "mismatches": mismatches, "met": met}
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--needs", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--scan-queries", type=int, default=20)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = p.parse_args(argv)
    out(f"trends benchmark: {args.needs:,} needs over {DAYS} days in {CITIES} cities, "
        f"{args.queries} timed queries, {args.scan_queries} scanned; python "
        f"{sys.version.split()[0]}; {load_note()}")
    results = {b: run_backend(b, args) for b in args.backends.split(",") if b.strip()}
    out("\n=== summary " + "=" * 50)
    for backend, r in results.items():
        out(f"{backend:<11} counters p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms | scan p50 "
            f"{r['scan_p50']:.1f} ms | {r['ratio']:,.0f}x | correctness "
            f"{'OK' if not r['mismatches'] else 'MISMATCH'} | target "
            f"{'met' if r['met'] else 'MISSED'}")
    return 0 if all(r["met"] and not r["mismatches"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
