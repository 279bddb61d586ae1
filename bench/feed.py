"""Feed benchmark: what one page of ``GET /api/v1/feed`` costs as open needs pile up.

    .venv/bin/python -m bench.feed [--needs 3,300,3000] [--requests 200] [--limits 1,20] \
        [--backends sqlite,postgresql]

Per backend: a throw-away database built by the migrations (a temporary SQLite file; a new
PostgreSQL database on ``TEST_POSTGRES_URL``'s server, dropped at the end), one provider in
Austin serving catering within 25 km, and N open catering needs spread uniformly over that disc,
each reaching 30 km (so every one is in the feed), inserted through the ORM (the model computes
each need's unit vectors) and ANALYZEd. Then whole requests through the Flask test client, the
way a client sees them: the feed as it ships (SQL pages, ``needs/feed.py``) and, as the
baseline in the same run, the implementation it replaced — every matching need built in
Python, sorted by (band, newest), the page cut out afterwards (kept below, verbatim but for
names). The two are timed interleaved, request by request, so a busy machine slows both
alike; the first pages of both must be identical, and at every size the whole walk of the new
feed must equal the old feed (the exit status is 1 if not).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from bench.common import load_note, out
from bench.scratch import scratch_database
from marketplace import access
from marketplace.pagination import encode_offset_cursor, offset_page

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
AUSTIN = (30.2672, -97.7431)
RADIUS_KM = 25.0


# --- the baseline: the feed before it paged in SQL -------------------------------------------


def old_feed(user: Any) -> list[Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from marketplace.blocks import services as blocks
    from marketplace.db_types import utcnow
    from marketplace.errors import Forbidden
    from marketplace.extensions import db
    from marketplace.geo import CELL_SLACK_KM, band_index, display_km, grid_cell_centre, in_reach, search_box
    from marketplace.needs.models import Need, NeedStatus
    from marketplace.needs.presenters import NeedView
    from marketplace.offers.models import Offer
    from marketplace.providers import matching
    from marketplace.providers import services as providers

    provider = providers.provider_of(user)
    if provider is None:
        raise Forbidden("Set up a provider profile (PUT /api/v1/me/provider) to get a feed.")
    if not provider.active or not provider.categories:
        return []
    cell = grid_cell_centre(provider.base_lat, provider.base_lon)
    box = search_box(cell.lat, cell.lon, provider.radius_km + CELL_SLACK_KM)  # cell to cell
    stmt = select(Need).options(selectinload(Need.category)).where(
        Need.status == NeedStatus.OPEN,
        Need.category_id.in_([c.id for c in provider.categories]),
        matching.box_filter(box, Need.lat_row, Need.lon),
        Need.expires_at > utcnow(),
        Need.customer_id != user.id,
    )
    blocking = blocks.customers_blocking(provider.id)
    if blocking:
        stmt = stmt.where(Need.customer_id.not_in(blocking))
    found = []
    for need in db.session.scalars(stmt):
        need_cell = grid_cell_centre(need.lat, need.lon)
        if in_reach(cell, provider.radius_km, need_cell, need.radius_km):
            found.append((band_index(display_km(cell, need_cell)), -need.id, need))
    found.sort(key=lambda item: item[:2])
    offered = set(db.session.scalars(select(Offer.need_id).where(
        Offer.provider_id == provider.id, Offer.need_id.in_([n.id for _b, _i, n in found]))))
    return [NeedView.for_provider(need, "offering_provider" if need.id in offered
                                  else "matched_provider", provider)
            for _band, _id, need in found]


def old_page(user: Any, cursor: str | None, limit: int) -> Any:
    return offset_page(old_feed(user), cursor, limit)


# --- setup -----------------------------------------------------------------------------------


def add_needs(count: int, customers: Sequence[int], rng: random.Random) -> None:
    """``count`` open catering needs uniform over the provider's disc, each reaching 30 km."""
    from geopy.distance import geodesic

    from marketplace.db_types import utcnow
    from marketplace.extensions import db
    from marketplace.geo import lat_row
    from marketplace.needs.models import Need, NeedStatus
    from marketplace.providers.services import category_by_slug

    catering = category_by_slug("catering").id
    now = utcnow()
    for i in range(count):
        km, bearing = (RADIUS_KM - 0.5) * math.sqrt(rng.random()), rng.uniform(0, 360)
        point = geodesic(kilometers=km).destination(AUSTIN, bearing)
        db.session.add(Need(
            customer_id=customers[i % len(customers)], category_id=catering,
            title=f"Bench need {i}", description="Food for a party", lat=point.latitude,
            lon=point.longitude, lat_row=lat_row(point.latitude), radius_km=30.0,
            budget_amount=40000, budget_currency="USD", status=NeedStatus.OPEN,
            expires_at=now + timedelta(days=2), offer_count=0))
    db.session.commit()


def analyze() -> None:
    from sqlalchemy import text

    from marketplace.extensions import db

    db.session.execute(text("ANALYZE"))
    db.session.commit()


# --- measuring -------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(get: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    response = get()
    elapsed = time.perf_counter() - t
    assert response.status_code == 200, response.get_json()
    return response, elapsed * 1e3


def cursor_after(client: Any, headers: dict[str, str], count: int) -> str | None:
    """The new feed's cursor after its first ``count`` needs (None if that is all of it)."""
    if count == 0:
        return None
    body = client.get("/api/v1/feed", query_string={"limit": count}, headers=headers).get_json()
    if count > 100:  # the API's page limit: walk there
        ids, cursor = [], None
        while len(ids) < count:
            query: dict[str, Any] = {"limit": min(100, count - len(ids))}
            if cursor:
                query["cursor"] = cursor
            body = client.get("/api/v1/feed", query_string=query, headers=headers).get_json()
            ids += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
        return cursor
    return body["next_cursor"]


def walk(client: Any, headers: dict[str, str], limit: int = 100) -> list[int]:
    ids, cursor = [], None
    while True:
        query: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/feed", query_string=query, headers=headers).get_json()
        ids += [item["id"] for item in body["items"]]
        if not (cursor := body["next_cursor"]):
            return ids


def run_backend(backend: str, args: argparse.Namespace) -> bool:
    out(f"\n=== {backend} " + "=" * (70 - len(backend)))
    with scratch_database(backend, args.pg_admin_url, "bench-feed") as (url, _where):
        return _measure(args, url)


def _measure(args: argparse.Namespace, url: str) -> bool:
    import flask_migrate

    from marketplace import create_app
    from marketplace.accounts import services as accounts
    from marketplace.accounts.models import User
    from marketplace.extensions import db
    from marketplace.providers import services as providers

    ok = True
    app = None
    try:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                          "SECRET_KEY": "bench-secret", "PASSWORD_HASH_FAST": True,
                          "RATELIMIT_ENABLED": False})  # one account reads the feed N times
        with app.app_context():
            flask_migrate.upgrade()
            pro = accounts.register("pro@bench.test", "bench password 1", "Bench Pro")
            providers.save_profile(pro, {
                "handle": "bench-pro", "display_name": "Bench Pro", "bio": "",
                "categories": ["catering"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
                "radius_km": RADIUS_KM, "active": True})
            token, pro_id = accounts.create_token(pro, "bench")[1], pro.id
            customers = [accounts.register(f"c{i}@bench.test", "bench password 1", f"C {i}").id
                         for i in range(10)]
            db.session.remove()
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        rng = random.Random(args.seed)
        have = 0
        shipped = access.feed
        for n in args.needs:
            with app.app_context():
                add_needs(n - have, customers, rng)
                analyze()
                db.session.remove()
            have = n
            everything = walk(client, headers)
            with app.app_context():
                baseline = [item.id for item in old_feed(db.session.get(User, pro_id))]
                db.session.remove()
            same = everything == baseline and len(everything) == n
            ok = ok and same
            out(f"\n{n:,} open needs in the feed ({load_note()}); whole feed identical to the "
                f"baseline: {'yes' if same else 'NO'}")
            middle = n // 2  # a page from the middle of the feed too
            mid_cursor = {"paged in SQL": cursor_after(client, headers, middle),
                          "baseline": encode_offset_cursor(middle)}
            for limit in args.limits:
                for where in ("first page", "mid-feed"):
                    if where == "mid-feed" and not mid_cursor["paged in SQL"]:
                        continue
                    times: dict[str, list[float]] = {"paged in SQL": [], "baseline": []}
                    pages: dict[str, Any] = {}
                    for i in range(args.requests + 10):
                        for name in times:
                            query: dict[str, Any] = {"limit": limit}
                            if where == "mid-feed":
                                query["cursor"] = mid_cursor[name]
                            access.feed = (  # type: ignore[assignment]
                                shipped if name == "paged in SQL" else old_page)
                            try:
                                response, elapsed = timed(lambda q=query: client.get(
                                    "/api/v1/feed", query_string=q, headers=headers))
                            finally:
                                access.feed = shipped
                            pages.setdefault(name, response.get_json()["items"])
                            if i >= 10:  # warm-up
                                times[name].append(elapsed)
                    if pages["paged in SQL"] != pages["baseline"]:
                        ok = False
                        out(f"  {where}: PAGES DIFFER")
                    p50 = {k: statistics.median(v) for k, v in times.items()}
                    label = f"limit={limit:<3} {where:<10}"
                    for name, values in times.items():
                        out(f"  {label} {name:<13} p50 {p50[name]:7.2f} ms   p90 "
                            f"{pct(values, 0.9):7.2f} ms")
                    out(f"  {label} baseline / paged in SQL (p50): "
                        f"{p50['baseline'] / p50['paged in SQL']:.1f}x")
    finally:
        if app is not None:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--needs", type=lambda s: sorted(int(x) for x in s.split(",")),
                   default=[3, 300, 3000])
    p.add_argument("--limits", type=lambda s: [int(x) for x in s.split(",")], default=[1, 20])
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = p.parse_args(argv)
    out(f"feed benchmark: one provider (Austin, {RADIUS_KM:g} km, catering), GET /api/v1/feed "
        f"through the test client, {args.requests} timed requests per figure")
    ok = all([run_backend(b, args) for b in args.backends.split(",")])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
