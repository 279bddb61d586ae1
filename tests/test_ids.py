"""No id of any table is ever handed out twice, on either backend: a deleted row's id stays
spent (SQLite tables are AUTOINCREMENT; PostgreSQL sequences never go back), so a client that
retries an old request about id N can never reach a newer row that happens to get id N."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import _clean, message_data, need_data
from images import png
from sqlalchemy import Table, delete, func, insert, select

from marketplace import lifecycle
from marketplace.accounts import sessions
from marketplace.alerts import services as alerts
from marketplace.api.idempotency import HEADER
from marketplace.db_types import utcnow
from marketplace.extensions import db
from marketplace.messages import services as messages
from marketplace.moderation import services as moderation
from marketplace.needs import services as needs
from marketplace.notifications.models import Notification
from marketplace.notifications.outbox import notify
from marketplace.webhooks.models import WebhookAttempt, WebhookDelivery

SURROGATE = sorted(t.name for t in db.metadata.sorted_tables if t.autoincrement_column is not None)


def test_every_table_with_a_surrogate_key_is_covered() -> None:
    """The tables below are the ones with a database-assigned integer id; a new one is covered
    by the tests of this module without being named anywhere."""
    assert {"users", "api_tokens", "categories", "providers", "needs", "offers", "messages",
            "ratings", "idempotency_keys"} <= set(SURROGATE)
    assert "notifications" not in SURROGATE  # ids from NotificationCounter, tested below


@pytest.fixture
def world(make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> Iterator[None]:
    """At least one row in every table: a completed, rated job with a message thread; then an
    open need posted through the API with an Idempotency-Key; then a spare category."""
    customer = make_user()
    pro = make_provider()
    alerts.save(pro.user, {"categories": ["catering"]})  # the needs queue alerts (alert_queue)
    need = make_need(customer)
    offer = make_offer(need, pro)
    messages.send(customer.user, offer.id, "Can you do vegan?")
    lifecycle.accept(customer.user, offer.id)
    lifecycle.complete(customer.user, need.id)
    lifecycle.rate(customer.user, need.id, {"stars": 5})
    sessions.start(customer.user, remember=False)  # a web sign-in
    admin = make_user()
    moderation.set_admin(admin.user.email, True)
    report = moderation.report(customer.user, {"target_type": "profile",
                                               "handle": pro.provider.handle, "reason": "spam"})
    moderation.dismiss(admin.user, report.id, "")  # a moderation_log row
    assert customer.post("/api/v1/password-reset", json={"email": customer.user.email}) \
        .status_code == 202  # a mailed link (account_tokens)
    response = customer.post("/api/v1/needs", json=need_data(title="Second need ?kayak"),
                             headers={HEADER: "world-need"})
    assert response.status_code == 201, response.get_json()
    needs.add_photo(customer.user, needs.get(response.get_json()["id"]), png)  # need_photos
    webhook = customer.post("/api/v1/webhooks", json={"url": "https://example.com/h",
                                                      "types": ["offer.received"]}).get_json()
    delivery = WebhookDelivery(webhook_id=webhook["id"], notification_id=1,
                               type="offer.received", payload="{}")
    db.session.add(delivery)
    db.session.flush()
    db.session.add(WebhookAttempt(delivery_id=delivery.id, duration_ms=5, response_status=500))
    categories = db.metadata.tables["categories"]
    db.session.execute(insert(categories).values(slug="zz-spare", name="Spare"))
    db.session.commit()
    yield
    with db.engine.begin() as conn:  # categories are kept between tests: leave the seeded list
        conn.execute(delete(categories).where(categories.c.slug == "zz-spare"))


def _reinsert_newest(table: Table) -> tuple[int, int]:
    """Delete the row with the highest id and insert the same values again without an id:
    (deleted id, id the database gives the new row)."""
    pk = table.autoincrement_column
    assert pk is not None
    with db.engine.begin() as conn:
        newest = conn.execute(select(table).order_by(pk.desc()).limit(1)).mappings().one()
        conn.execute(delete(table).where(pk == newest[pk.name]))
        values = {k: v for k, v in newest.items() if k != pk.name}
        new_id = conn.execute(insert(table).values(values).returning(pk)).scalar_one()
    return newest[pk.name], new_id


@pytest.mark.parametrize("name", SURROGATE)
def test_the_id_of_a_deleted_newest_row_is_never_given_again(app: Any, world: None,
                                                             name: str) -> None:
    table = db.metadata.tables[name]
    deleted, new = _reinsert_newest(table)
    assert new > deleted, f"{name}: id {deleted} was deleted and handed out again"


def test_a_revoked_token_id_is_not_given_to_the_next_token(make_user: Any) -> None:
    """The defect as reported: revoke the newest token, create another, retry the old revoke."""
    person = make_user()
    old = person.post("/api/v1/tokens", json={"email": person.user.email,
                                              "password": person.password, "name": "old"})
    old_id = old.get_json()["id"]
    assert person.delete(f"/api/v1/tokens/{old_id}").status_code == 204
    new = person.post("/api/v1/tokens", json={"email": person.user.email,
                                              "password": person.password, "name": "new"})
    new_token = new.get_json()
    assert new_token["id"] != old_id
    assert person.delete(f"/api/v1/tokens/{old_id}").status_code == 404  # the retry
    me = person.get("/api/v1/me", headers={"Authorization": f"Bearer {new_token['token']}"})
    assert me.status_code == 200


def test_notification_ids_come_from_a_counter_that_only_grows(make_user: Any) -> None:
    """Notifications take ids from NotificationCounter, not the table: deleting the newest
    notification does not make its id available again."""
    person = make_user()
    for _ in range(2):
        notify([person.user.id], "message.received", message_data("ping"))
        db.session.commit()
    table = Notification.__table__
    with db.engine.begin() as conn:
        newest = conn.scalar(select(func.max(table.c.id)))
        conn.execute(delete(table).where(table.c.id == newest))
    notify([person.user.id], "message.received", message_data("ping"))
    db.session.commit()
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.max(table.c.id))) == newest + 1


def test_tests_do_not_restart_ids_between_tests(app: Any) -> None:
    """The per-test cleanup leaves the id generators alone on both backends (PostgreSQL's
    TRUNCATE without RESTART IDENTITY, SQLite's DELETE keeps sqlite_sequence), so no test can
    come to depend on ids starting at 1."""
    users = db.metadata.tables["users"]

    def add_user() -> int:
        with db.engine.begin() as conn:
            return conn.execute(insert(users).values(
                email="seq@example.com", name="Seq", password_hash="x", created_at=utcnow(),
            ).returning(users.c.id)).scalar_one()

    first = add_user()
    _clean(app)
    assert add_user() > first
