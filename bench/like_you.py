""""People like you" benchmark: the scores of a need page's 20 offers.

Run from the repository root::

    .venv/bin/python -m bench.like_you [--ratings 100000] [--customers 10000] \\
        [--providers 2000] [--queries 300] [--backends sqlite,postgresql]

Per backend: a throw-away database built by the migrations (a temporary SQLite file; a new
PostgreSQL database on ``TEST_POSTGRES_URL``'s server, dropped at the end); synthetic users,
providers, needs and ratings (seeded) inserted in bulk, then ANALYZE. Then, for random
viewers, the real ``offers.reputation.like_you`` on 20 providers of the viewer's city (one
statement for all of them) is timed (p50/p99) and, in the same run and interleaved query by
query, a naive baseline that asks the same per provider (``like_you`` on one provider, 20
times), with the ratio and whether both give identical answers (exit status 1 if not, or if
p50 misses 20 ms).

Synthetic data: 20 cities at random in the contiguous US; providers and customers each in a
city; every provider has a quality (uniform 2..5 stars) and every customer a bias (normal,
sigma 0.7), and a rating is quality + bias + noise (sigma 0.6), rounded to 1..5. Customers rate
providers of their own city, by a Zipf-like popularity (weight 1/rank), about ratings /
customers each; every rating belongs to a finished need of its own, near the customer's city
(normal, sigma 8 km). 95% of customers confirmed their address; 1% are suspended.
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
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import load_note, out, pct, reset_id_sequences
from bench.scratch import scratch_database

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
CITIES = 20
PAGE = 20
TARGET_P50_MS = 20.0
BATCH = 20_000


def cities(seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(28, 47), rng.uniform(-120, -72)) for _ in range(CITIES)]


def near(rng: random.Random, place: tuple[float, float], sigma_km: float) -> tuple[float, float]:
    lat = place[0] + rng.gauss(0, sigma_km) / 111.2
    return lat, place[1] + rng.gauss(0, sigma_km) / (111.2 * math.cos(math.radians(place[0])))


class World:
    """The synthetic rows, and what the queries need: each city's providers by popularity."""

    def __init__(self, args: argparse.Namespace) -> None:
        rng = random.Random(args.seed)
        self.places = cities(args.seed)
        self.city_of_provider = [rng.randrange(CITIES) for _ in range(args.providers)]
        self.city_of_customer = [rng.randrange(CITIES) for _ in range(args.customers)]
        self.quality = [rng.uniform(2, 5) for _ in range(args.providers)]
        self.bias = [rng.gauss(0, 0.7) for _ in range(args.customers)]
        self.by_city: list[list[int]] = [[] for _ in range(CITIES)]
        for p, city in enumerate(self.city_of_provider):
            self.by_city[city].append(p + 1)  # provider ids from 1, popular first
        self.weights = [[1.0 / (r + 1) for r in range(len(ps))] for ps in self.by_city]
        self.rng = rng
        self.args = args

    def users(self) -> list[dict[str, Any]]:
        rng, rows = self.rng, []
        n_customers, n_providers = self.args.customers, self.args.providers
        for i in range(1, n_customers + n_providers + 1):
            customer = i <= n_customers
            rows.append({"id": i, "email": f"u{i}@bench.invalid", "name": f"User {i}",
                         "password_hash": "!", "created_at": NOW,
                         "verified_at": NOW if not customer or rng.random() < 0.95 else None,
                         "suspended_at": NOW if customer and rng.random() < 0.01 else None})
        return rows

    def providers(self) -> list[dict[str, Any]]:
        rows = []
        for p in range(self.args.providers):
            lat, lon = self.places[self.city_of_provider[p]]
            rows.append({"id": p + 1, "user_id": self.args.customers + p + 1,
                         "handle": f"pro-{p + 1}", "display_name": f"Pro {p + 1}", "bio": "",
                         "base_lat": lat, "base_lon": lon, "radius_km": 30.0, "active": True,
                         "direct_asks": True, "created_at": NOW, "updated_at": NOW})
        return rows

    def needs_and_ratings(self) -> Any:
        from marketplace.geo import grid_cell_centre, km_cos, lat_row, unit_vector
        from marketplace.ratings.models import near_tile

        rng, args = self.rng, self.args
        needs, ratings = [], []
        start = NOW - timedelta(days=365)
        for rid in range(1, args.ratings + 1):
            c = rng.randrange(args.customers)
            city = self.city_of_customer[c]
            p = rng.choices(self.by_city[city], self.weights[city])[0]
            lat, lon = near(rng, self.places[city], 8)
            u, cell = unit_vector(lat, lon), unit_vector(*grid_cell_centre(lat, lon))
            created = start + timedelta(seconds=rid * 365 * 86400 // args.ratings)
            needs.append({
                "id": rid, "customer_id": c + 1, "category_id": 1, "title": "Bench need",
                "description": "", "lat": lat, "lon": lon, "lat_row": lat_row(lat),
                "ux": u.x, "uy": u.y, "uz": u.z, "cell_ux": cell.x, "cell_uy": cell.y,
                "cell_uz": cell.z, "reach_cos": km_cos(10), "radius_km": 10.0,
                "budget_amount": 1000, "budget_currency": "USD",
                "expires_at": created + timedelta(days=2), "offer_count": 1,
                "status": "completed", "audience": "nearby", "share_token": f"t{rid}",
                "created_at": created})
            stars = round(self.quality[p - 1] + self.bias[c] + rng.gauss(0, 0.6))
            ratings.append({"id": rid, "need_id": rid, "provider_id": p, "customer_id": c + 1,
                            "stars": max(1, min(5, stars)), "comment": "",
                            "created_at": created + timedelta(days=1),
                            **dict(zip(("near_row", "near_col"), near_tile(lat, lon),
                                       strict=True))})
            if len(needs) == BATCH:
                yield needs, ratings
                needs, ratings = [], []
        if needs:
            yield needs, ratings


def load(world: World) -> None:
    """Insert everything in one transaction (SQLAlchemy Core executemany; rows consistent by
    construction), then ANALYZE."""
    from sqlalchemy import text

    from marketplace.accounts.models import User
    from marketplace.extensions import db
    from marketplace.needs.models import Need
    from marketplace.providers.models import Provider
    from marketplace.ratings.models import Rating

    session = db.session
    session.execute(User.__table__.insert(), world.users())
    session.execute(Provider.__table__.insert(), world.providers())
    for needs, ratings in world.needs_and_ratings():
        session.execute(Need.__table__.insert(), needs)
        session.execute(Rating.__table__.insert(), ratings)
    session.commit()
    reset_id_sequences(session, ["users", "providers", "needs", "ratings"])
    if session.get_bind().dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
            con.execute(text("VACUUM (ANALYZE) users, providers, needs, ratings"))
    else:
        session.execute(text("ANALYZE"))
        session.commit()


def stats(values: list[float]) -> str:
    return (f"p50 {pct(values, 50):.2f} ms  p90 {pct(values, 90):.2f} ms  "
            f"p99 {pct(values, 99):.2f} ms  mean {statistics.fmean(values):.2f} ms")


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    import flask_migrate
    from sqlalchemy import func, select

    from marketplace import create_app
    from marketplace.extensions import db
    from marketplace.offers.reputation import like_you
    from marketplace.ratings.models import Rating

    out(f"\n=== {backend} " + "=" * (70 - len(backend)))
    with scratch_database(backend, args.pg_admin_url, "bench-like-you") as (url, where):
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                          "SECRET_KEY": "bench-secret", "REDIS_URL": None})
        try:
            with app.app_context():
                flask_migrate.upgrade()
                db.session.remove()
                out(f"{where}; schema by the migrations")
                world = World(args)
                t0 = time.perf_counter()
                load(world)
                out(f"load: {args.customers:,} customers, {args.providers:,} providers, "
                    f"{args.ratings:,} needs and ratings, then ANALYZE: "
                    f"{time.perf_counter() - t0:.1f} s")
                gc.collect()
                rng = random.Random(args.seed + 1)
                raters = db.session.scalars(select(Rating.customer_id).group_by(
                    Rating.customer_id).having(func.count() >= 2)).all()
                queries = []
                for _ in range(args.queries):
                    viewer = rng.choice(raters)
                    city = world.city_of_customer[viewer - 1]
                    ids: set[int] = set()
                    while len(ids) < min(PAGE, len(world.by_city[city])):
                        ids.add(rng.choices(world.by_city[city], world.weights[city])[0])
                    queries.append((viewer, sorted(ids), near(rng, world.places[city], 8)))
                for q in queries[:20]:  # warm-up
                    like_you(*q)
                    for pid in q[1]:
                        like_you(q[0], [pid], q[2])
                db.session.rollback()
                out(f"machine: {load_note()}")
                fast: list[float] = []
                slow: list[float] = []
                mismatches = shown = 0
                for viewer, ids, place in queries:  # interleaved: a busy moment slows both
                    t0 = time.perf_counter_ns()
                    answer = like_you(viewer, ids, place)
                    fast.append((time.perf_counter_ns() - t0) / 1e6)
                    t0 = time.perf_counter_ns()
                    naive = {}
                    for pid in ids:
                        naive.update(like_you(viewer, [pid], place))
                    slow.append((time.perf_counter_ns() - t0) / 1e6)
                    mismatches += answer != naive
                    shown += sum(1 for a in answer.values() if a and (a["agreeing"]
                                                                      or a["nearby"]))
                    db.session.rollback()
                ratio = pct(slow, 50) / pct(fast, 50)
                out(f"one statement: offers.reputation.like_you on {PAGE} providers, "
                    f"{len(queries)} viewers: {stats(fast)}")
                out(f"  providers with a score shown per page: mean "
                    f"{shown / len(queries):.1f} of {PAGE}")
                out(f"per provider (baseline): like_you on one provider, {PAGE} times: "
                    f"{stats(slow)}")
                out(f"  ratio baseline p50 / one statement p50: {ratio:.1f}x")
                out("correctness: " + ("OK, identical answers" if not mismatches else
                                       f"MISMATCH in {mismatches} pages"))
                met = pct(fast, 50) < TARGET_P50_MS
                out(f"target: p50 < {TARGET_P50_MS:.0f} ms for {PAGE} offers: "
                    f"{'met' if met else 'MISSED'}")
                return {"p50": pct(fast, 50), "p99": pct(fast, 99), "base_p50": pct(slow, 50),
                        "base_p99": pct(slow, 99), "ratio": ratio, "mismatches": mismatches,
                        "met": met}
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ratings", type=int, default=100_000)
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--providers", type=int, default=2_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = p.parse_args(argv)
    out(f"people-like-you benchmark: {args.ratings:,} ratings by {args.customers:,} customers "
        f"of {args.providers:,} providers in {CITIES} cities, {args.queries} pages of {PAGE} "
        f"offers; python {sys.version.split()[0]}; {load_note()}")
    results = {b: run_backend(b, args) for b in args.backends.split(",") if b.strip()}
    out("\n=== summary " + "=" * 50)
    for backend, r in results.items():
        out(f"{backend:<11} one statement p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms | "
            f"per provider p50 {r['base_p50']:.1f} ms, p99 {r['base_p99']:.1f} ms | "
            f"{r['ratio']:.1f}x | correctness {'OK' if not r['mismatches'] else 'MISMATCH'} "
            f"| target {'met' if r['met'] else 'MISSED'}")
    return 0 if all(r["met"] and not r["mismatches"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
