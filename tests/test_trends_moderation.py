"""Trends count only what moderation leaves standing -- a hidden need and a suspended
customer's needs stop counting and count again once restored -- and old counters are
forgotten (``flask prune-trends`` and the expiry loop, hourly)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import AUSTIN, committed_rows
from sqlalchemy import func, select, update

from marketplace.extensions import db
from marketplace.moderation import services as moderation
from marketplace.realtime import expiry_round
from marketplace.signals import services
from marketplace.signals.models import TrendHit


@pytest.fixture
def admin(make_user: Any) -> Any:
    person = make_user(name="Ada Admin")
    moderation.set_admin(person.user.email, True)
    return person


def act(admin: Any, action: str, target_type: str, target_id: int) -> None:
    r = admin.post("/api/v1/admin/actions", json={
        "action": action, "target_type": target_type, "target_id": target_id})
    assert r.status_code == 200, r.get_json()


def kayaks(viewer: Any) -> int:
    r = viewer.get("/api/v1/trends", query_string={
        "lat": AUSTIN[0], "lon": AUSTIN[1], "radius_km": 5, "window": "24h"})
    assert r.status_code == 200, r.get_json()
    return {i["tag"]: i["count"] for i in r.get_json()["intents"]}.get("kayak", 0)


def hits(customer: Any) -> int:
    return sum(row.needs for row in committed_rows(TrendHit, customer_id=customer.user.id,
                                                   kind="intent", tag="kayak"))


def test_hidden_needs_and_suspended_customers_do_not_count_until_restored(
        make_user: Any, make_need: Any, admin: Any) -> None:
    viewer = make_user()
    people = [make_user() for _ in range(3)]
    needs = [make_need(p, title="Looking for a ?kayak #river") for p in people]
    twice = make_need(people[0], title="Another ?kayak please")
    assert kayaks(viewer) == 3 and hits(people[0]) == 2
    # Hiding one of two needs takes away that need only; hiding one person's only need takes
    # the tag under the floor of three people.
    act(admin, "hide", "need", twice.id)
    assert hits(people[0]) == 1 and kayaks(viewer) == 3
    act(admin, "hide", "need", needs[1].id)
    assert hits(people[1]) == 0 and kayaks(viewer) == 0
    act(admin, "unhide", "need", needs[1].id)
    assert hits(people[1]) == 1 and kayaks(viewer) == 3
    # A suspended customer's needs leave the trends, and come back with the account.
    act(admin, "suspend", "user", people[2].user.id)
    assert hits(people[2]) == 0 and kayaks(viewer) == 0
    act(admin, "unsuspend", "user", people[2].user.id)
    assert hits(people[2]) == 1 and kayaks(viewer) == 3
    # The topic came back in the same hour and tile as it was counted.
    assert {(r.kind, r.tag, r.needs) for r in committed_rows(
        TrendHit, customer_id=people[2].user.id)} == {("intent", "kayak", 1),
                                                      ("topic", "river", 1)}
    # A need hidden while its customer is suspended stays uncounted when the account returns.
    act(admin, "suspend", "user", people[2].user.id)
    act(admin, "hide", "need", needs[2].id)
    act(admin, "unsuspend", "user", people[2].user.id)
    assert hits(people[2]) == 0


def _age_all(hours: int) -> None:
    db.session.execute(update(TrendHit).values(hour=TrendHit.hour - hours))
    db.session.commit()


def test_prune_trends_forgets_counters_older_than_fourteen_days(
        app: Any, make_user: Any, make_need: Any) -> None:
    old, recent = make_user(), make_user()
    make_need(old, title="An old ?canoe")
    _age_all(services.KEEP_HOURS + 1)
    make_need(recent, title="A new ?canoe")
    db.session.execute(update(TrendHit).where(TrendHit.customer_id == recent.user.id)
                       .values(hour=TrendHit.hour - services.KEEP_HOURS + 1))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["prune-trends"])
    assert result.exit_code == 0 and "Forgot 1 trend counters." in result.output
    assert committed_rows(TrendHit, customer_id=old.user.id) == []
    assert len(committed_rows(TrendHit, customer_id=recent.user.id)) == 1


def test_the_expiry_loop_prunes_trends_once_an_hour(app: Any, make_user: Any,
                                                    make_need: Any) -> None:
    customer = make_user()
    make_need(customer, title="An old ?canoe")
    _age_all(services.KEEP_HOURS + 1)

    def count() -> int:
        return int(db.session.scalar(select(func.count()).select_from(TrendHit)))

    just_now = time.monotonic()
    assert expiry_round(app, just_now) == just_now and count() == 1  # pruned within the hour
    pruned_at = expiry_round(app, just_now - 3600)
    assert pruned_at > just_now and count() == 0
    # A counter is pruned by hour since 1970, whatever the clock says now.
    assert services.prune(datetime.now(UTC) + timedelta(days=30)) == 0
