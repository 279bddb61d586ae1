"""``trend_groups``, the count of customers per trend tile and tag that lets trends skip every
group below the k floor: whatever sequence of needs posted, tags edited away, customers
counted again by moderation and old hours pruned, each group's count is exactly the number of
distinct customers its hits have, and trends answer exactly what every hit, read without the
groups, says they should."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import AUSTIN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from bench.trends import answer_from_tiles
from marketplace.extensions import db
from marketplace.signals import services
from marketplace.signals.models import SHARED_FROM, TrendGroup, TrendHit

NOW = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
# three tiles apart (0.1 degree each) and one of them at the edge of a 10 km area
PLACES = [AUSTIN, (AUSTIN[0] + 0.1, AUSTIN[1]), (AUSTIN[0], AUSTIN[1] + 0.25)]
TAGS = [("intent", "kayak"), ("intent", "tacos"), ("topic", "music")]

op = st.one_of(
    st.tuples(st.just("post"), st.integers(0, 3), st.integers(0, 2),
              st.integers(0, 24 * 16), st.sets(st.sampled_from(TAGS), min_size=1)),
    st.tuples(st.just("unpost"), st.integers(0, 3), st.integers(0, 2),
              st.integers(0, 24 * 16), st.sets(st.sampled_from(TAGS), min_size=1)),
    st.tuples(st.just("forget"), st.integers(0, 3)),
    st.tuples(st.just("prune"), st.integers(0, 24 * 3)),
)


def exact_groups() -> dict[tuple[Any, ...], int]:
    t = TrendHit.__table__.c
    return {tuple(r[:4]): r[4] for r in db.session.execute(
        select(t.cell_row, t.cell_col, t.kind, t.tag, func.count(func.distinct(t.customer_id)))
        .group_by(t.cell_row, t.cell_col, t.kind, t.tag))}


def stored_groups() -> dict[tuple[Any, ...], int]:
    g = TrendGroup.__table__.c
    return {tuple(r[:4]): r[4] for r in db.session.execute(
        select(g.cell_row, g.cell_col, g.kind, g.tag, g.customers))}


def hits_name_their_group_and_its_sharing() -> None:
    """Every hit names the group of its tile and tag, and is ``shared`` exactly when that group
    has at least ``SHARED_FROM`` customers (trends read only shared hits)."""
    groups = {r.id: r for r in db.session.execute(select(TrendGroup.__table__))}
    for hit in db.session.scalars(select(TrendHit)):
        group = groups[hit.group_id]
        assert (group.cell_row, group.cell_col, group.kind, group.tag) == \
            (hit.cell_row, hit.cell_col, hit.kind, hit.tag)
        assert hit.shared == (group.customers >= SHARED_FROM), (hit.kind, hit.tag)
    assert len({(r.cell_row, r.cell_col, r.kind, r.tag) for r in groups.values()}) == len(groups)


def trends_from_every_hit(lat: float, lon: float, radius_km: float, window: str,
                          k: int) -> dict[str, Any]:
    """What ``services.trends`` must answer, from every hit of the area (no groups), ranked
    as the benchmark's scan ranks its tallies."""
    hours = services.WINDOWS[window]
    until = services.hour_of(NOW)
    current = until - hours + 1
    where = services.area(lat, lon, radius_km)
    cols = set(where.columns)
    tiles: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, set(), 0, set()])
    for hit in db.session.scalars(select(TrendHit)):
        if hit.cell_row not in where.rows or hit.cell_col not in cols:
            continue
        if not current - hours <= hit.hour <= until:
            continue
        acc = tiles[(hit.kind, hit.tag, hit.cell_row, hit.cell_col)]
        now = hit.hour >= current
        acc[0 if now else 2] += hit.needs
        acc[1 if now else 3].add(hit.customer_id)
    return answer_from_tiles(tiles, k)


def test_the_groups_stay_exact_and_trends_match_every_hit(app: Any, make_user: Any) -> None:
    customers = [make_user().user.id for _ in range(4)]
    k = app.config["TRENDS_MIN_CUSTOMERS"]

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(ops=st.lists(op, min_size=1, max_size=25))
    def check(ops: list[tuple[Any, ...]]) -> None:
        db.session.execute(delete(TrendHit.__table__))
        db.session.execute(delete(TrendGroup.__table__))
        for step in ops:
            if step[0] in ("post", "unpost"):
                _, who, place, hours_ago, tags = step
                services._count(customers[who], *PLACES[place], NOW - timedelta(hours=hours_ago),
                                sorted(tags), +1 if step[0] == "post" else -1)
            elif step[0] == "forget":  # moderation counts a customer again from no needs
                services.recount(customers[step[1]], [])
            else:
                services.prune(NOW + timedelta(hours=step[1]))
            assert stored_groups() == exact_groups(), step
            hits_name_their_group_and_its_sharing()
        for radius, window in ((5.0, "24h"), (30.0, "7d")):
            answer = services.trends(*AUSTIN, radius, window, now=NOW)
            assert {"intents": answer["intents"], "topics": answer["topics"]} == \
                trends_from_every_hit(*AUSTIN, radius, window, k)
        db.session.commit()

    check()
