"""Webhooks against a real local receiver (tests/receiver.py): a notification is delivered
signed as Standard Webhooks says (checked with its reference verifier), retried after a
failing answer, given up and the webhook disabled after persistent failure; nothing goes to a
suspended account's webhook; URLs that point inside are refused; another user cannot see or
touch one's webhook; a webhook is changed and re-enabled (resuming what it is owed), its secret
rotated with an overlap in which both secrets verify, and its owner told when it is disabled."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import error_of
from flask import Flask
from receiver import receiving
from sqlalchemy import event, select
from standardwebhooks.webhooks import Webhook as Verifier

from marketplace.alerts.models import QueuedAlert
from marketplace.db_types import utcnow
from marketplace.extensions import db
from marketplace.moderation import services as moderation
from marketplace.notifications.models import Notification
from marketplace.webhooks import outbound
from marketplace.webhooks.models import Webhook, WebhookDelivery
from marketplace.webhooks.services import deliver_due

API = "/api/v1/webhooks"


def register(person: Any, url: str, types: list[str] | None = None) -> dict[str, Any]:
    r = person.post(API, json={"url": url, "types": types or ["need.matched"]})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_notification_is_delivered_signed_and_only_once(make_user: Any, make_provider: Any,
                                                         make_need: Any) -> None:
    provider = make_provider(make_user("Pia Provider"))
    with receiving() as receiver:
        created = register(provider, receiver.url)
        assert created["secret"].startswith("whsec_")
        need = make_need(make_user("Cy Customer"), title="Tacos for 40")
        assert deliver_due() == 1
        assert deliver_due() == 0  # delivered: never again
    [got] = receiver.received
    payload = Verifier(created["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "need.matched"
    assert payload["data"]["need"]["id"] == need.id
    stored = db.session.query(WebhookDelivery).one()
    assert (stored.status, stored.attempts, stored.response_status) == ("delivered", 1, 200)
    # the same envelope the Socket.IO ``notification`` event carries
    assert json.loads(got.body)["id"] == stored.notification_id
    # logged with its answer, and replayed on request with the same webhook-id
    [logged] = provider.get(f"{API}/{created['id']}/deliveries").get_json()["items"]
    assert (logged["status"], logged["response_status"], logged["response_body"]) == \
        ("delivered", 200, "answered 200")
    with receiving() as again:
        db.session.get(Webhook, created["id"]).url = again.url
        db.session.commit()
        r = provider.post(f"{API}/{created['id']}/deliveries/{logged['id']}/replay")
        assert r.status_code == 202 and r.get_json()["status"] == "pending"
        assert deliver_due() == 1
    [replayed] = again.received
    assert replayed.headers["webhook-id"] == got.headers["webhook-id"]
    assert Verifier(created["secret"]).verify(replayed.body, replayed.headers) == payload
    with pytest.raises(Exception, match="signature"):
        Verifier("whsec_" + "A" * 32).verify(got.body, got.headers)


def test_a_failing_receiver_is_retried_then_the_webhook_disabled(make_user: Any,
                                                                make_provider: Any,
                                                                make_need: Any) -> None:
    provider = make_provider(make_user("Pia Provider"))
    customer = make_user("Cy Customer")
    with receiving() as receiver:
        created = register(provider, receiver.url)
        receiver.answers = [500, 503]
        make_need(customer, title="First")
        assert deliver_due() == 1  # 500
        assert deliver_due() == 1  # 503, retried at once (schedule 0,0 in tests)
        assert deliver_due() == 1  # 200
        assert [r.headers["webhook-id"] for r in receiver.received] == \
            [receiver.received[0].headers["webhook-id"]] * 3  # the same message each time
        delivery = db.session.query(WebhookDelivery).one()
        assert (delivery.status, delivery.attempts) == ("delivered", 3)
        # every attempt logged with what came back, newest first
        tried = provider.get(f"{API}/{created['id']}/deliveries/{delivery.id}/attempts")
        assert [(a["response_status"], a["error"]) for a in tried.get_json()["items"]] == \
            [(200, None), (503, None), (500, None)]
        assert all(a["duration_ms"] >= 0 and a["attempted_at"] for a in tried.get_json()["items"])
        # two deliveries in a row failing every attempt: the webhook is disabled
        receiver.answers = [500] * 6
        make_need(customer, title="Second")
        make_need(customer, title="Third")
        for _ in range(3):
            deliver_due()
        assert provider.get(f"{API}/{created['id']}").get_json()["enabled"] is False
        sent = len(receiver.received)
        make_need(customer, title="Fourth")
        assert deliver_due() == 0
        assert len(receiver.received) == sent


def test_a_suspended_account_receives_nothing(make_user: Any, make_provider: Any,
                                              make_need: Any) -> None:
    provider = make_provider(make_user("Pia Provider"))
    admin = make_user("Ada Admin")
    moderation.set_admin(admin.user.email, True)
    with receiving() as receiver:
        register(provider, receiver.url)
        make_need(make_user("Cy Customer"), title="Before")
        moderation.act(admin.user, {"action": "suspend", "target_type": "user",
                                    "target_id": provider.user.id, "reason": "test"})
        assert deliver_due() == 0
    assert receiver.received == []


@pytest.mark.parametrize("url", ["https://127.0.0.1/x", "https://10.1.2.3/x", "https://[::1]/x",
                                 "http://example.com/x", "https://user:pw@example.com/x",
                                 "https://169.254.169.254/latest"])
def test_urls_that_cannot_receive_are_refused_naming_url(app: Flask, make_user: Any,
                                                         url: str) -> None:
    app.config.update(WEBHOOKS_ALLOW_HTTP=False, WEBHOOKS_ALLOW_PRIVATE=False)
    try:
        r = make_user().post(API, json={"url": url, "types": ["need.matched"]})
    finally:
        app.config.update(WEBHOOKS_ALLOW_HTTP=True, WEBHOOKS_ALLOW_PRIVATE=True)
    assert r.status_code == 422
    assert "url" in error_of(r)["fields"]
    assert db.session.query(Webhook).count() == 0


def test_a_name_resolving_to_loopback_is_refused_when_delivering() -> None:
    with pytest.raises(outbound.Refused, match="private"):
        outbound.post("https://localhost:9/x", b"{}", {}, allow_http=False, allow_private=False,
                      timeout=1, max_bytes=10)


def test_another_user_cannot_see_or_touch_your_webhook(make_user: Any) -> None:
    owner, other = make_user("Olive Owner"), make_user("Otto Other")
    created = register(owner, "https://example.com/hooks")
    assert other.get(f"{API}/{created['id']}").status_code == 404
    assert other.delete(f"{API}/{created['id']}").status_code == 404
    assert other.get(f"{API}/{created['id']}/deliveries").status_code == 404
    assert other.get(f"{API}/{created['id']}/deliveries/1/attempts").status_code == 404
    assert other.get(API).get_json()["items"] == []
    listed = owner.get(API).get_json()["items"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert owner.delete(f"{API}/{created['id']}").status_code == 204
    assert owner.get(f"{API}/{created['id']}").status_code == 404


# --- changing a webhook -------------------------------------------------------------------

def test_a_webhook_is_changed_by_its_owner_only(app: Flask, make_user: Any) -> None:
    owner, other = make_user("Olive Owner"), make_user("Otto Other")
    created = register(owner, "https://example.com/hooks")
    url = f"{API}/{created['id']}"
    r = owner.patch(url, json={"url": "https://example.org/new", "types": [
        "offer.received", "need.matched", "offer.received"]})
    assert r.status_code == 200, r.get_json()
    changed = r.get_json()
    assert (changed["url"], changed["types"], changed["enabled"]) == \
        ("https://example.org/new", ["need.matched", "offer.received"], True)
    assert "secret" not in changed
    assert owner.patch(url, json={}).get_json() == changed  # what is left out stays
    assert other.patch(url, json={"enabled": False}).status_code == 404
    for body, field in [({"types": ["no.such"]}, "types"), ({"types": []}, "types"),
                        ({"enabled": "perhaps"}, "enabled"), ({"url": ""}, "url"),
                        ({"url": "ftp://example.com/x"}, "url")]:
        r = owner.patch(url, json=body)
        assert r.status_code == 422, body
        assert field in error_of(r)["fields"], body
    app.config.update(WEBHOOKS_ALLOW_HTTP=False, WEBHOOKS_ALLOW_PRIVATE=False)
    try:
        r = owner.patch(url, json={"url": "https://10.1.2.3/x"})
    finally:
        app.config.update(WEBHOOKS_ALLOW_HTTP=True, WEBHOOKS_ALLOW_PRIVATE=True)
    assert r.status_code == 422 and "url" in error_of(r)["fields"]
    assert owner.get(url).get_json() == changed  # nothing refused was kept


def fail_until_disabled(receiver: Any, customer: Any, make_need: Any) -> None:
    """Two deliveries failing every attempt (WEBHOOKS_DISABLE_AFTER=2, three attempts each
    in tests), and a third owed meanwhile, still pending when the webhook is disabled."""
    receiver.answers = [500] * 7
    make_need(customer, title="First")
    make_need(customer, title="Second")
    assert deliver_due() == 2
    assert deliver_due() == 2
    make_need(customer, title="Third")
    assert deliver_due() == 3  # the first two fail for good; the third's first try fails


def test_re_enabling_a_disabled_webhook_resumes_what_it_is_owed(make_user: Any,
                                                                make_provider: Any,
                                                                make_need: Any) -> None:
    provider = make_provider(make_user("Pia Provider"))
    customer = make_user("Cy Customer")
    with receiving() as receiver:
        created = register(provider, receiver.url)
        url = f"{API}/{created['id']}"
        fail_until_disabled(receiver, customer, make_need)
        assert provider.get(url).get_json()["enabled"] is False
        assert deliver_due() == 0  # what it is still owed waits
        [pending] = db.session.query(WebhookDelivery).filter_by(status="pending").all()
        sent = len(receiver.received)
        assert provider.post(f"{url}/deliveries/{pending.id}/replay").status_code == 409
        r = provider.patch(url, json={"enabled": True})
        assert r.status_code == 200 and r.get_json()["enabled"] is True
        assert deliver_due() == 1
        assert len(receiver.received) == sent + 1
        assert json.loads(receiver.received[-1].body)["data"]["need"]["title"] == "Third"
        db.session.expire_all()
        assert db.session.get(WebhookDelivery, pending.id).status == "delivered"
        # the count of failures started again: one more failed delivery does not disable it
        receiver.answers = [500] * 3
        make_need(customer, title="Fourth")
        for _ in range(3):
            deliver_due()
        assert provider.get(url).get_json()["enabled"] is True
        # and pausing it holds deliveries back
        assert provider.patch(url, json={"enabled": False}).get_json()["enabled"] is False
        make_need(customer, title="Fifth")
        assert deliver_due() == 0


# --- disabled, with a notice --------------------------------------------------------------

def test_a_disabled_webhook_s_owner_is_told_live_and_on_their_other_webhooks(
        make_user: Any, make_provider: Any, make_need: Any, emitted_wire: list[str],
        auth: Any) -> None:
    provider = make_provider(make_user("Pia Provider"))
    customer = make_user("Cy Customer")
    with receiving() as failing, receiving() as other:
        created = register(provider, failing.url, ["need.matched", "webhook.disabled"])
        second = register(provider, other.url, ["webhook.disabled"])
        fail_until_disabled(failing, customer, make_need)
        assert deliver_due() == 1  # the notice, to the other webhook only
        assert deliver_due() == 0
    [notice] = [n for n in provider.get("/api/v1/notifications").get_json()["items"]
                if n["type"] == "webhook.disabled"]
    assert notice["data"] == {
        "webhook_id": created["id"], "url": failing.url, "failed_deliveries": 2,
        "last_delivery_id": notice["data"]["last_delivery_id"], "last_status": 500,
        "last_error": "HTTP 500"}
    assert failing.url in notice["text"] and "HTTP 500" in notice["text"]
    last = db.session.get(WebhookDelivery, notice["data"]["last_delivery_id"])
    assert (last.webhook_id, last.status) == (created["id"], "failed")
    # emitted live, as every notification is
    assert [json.loads(w)["id"] for w in emitted_wire
            if json.loads(w)["type"] == "webhook.disabled"] == [notice["id"]]
    # the failing webhook was never sent its own notice; the other was, signed with its secret
    assert all(json.loads(r.body)["type"] == "need.matched" for r in failing.received)
    [got] = other.received
    assert Verifier(second["secret"]).verify(got.body, got.headers)["id"] == notice["id"]
    # the notifications page says it
    page = auth.sign_in(provider).get("/notifications").get_data(as_text=True)
    assert "webhook disabled" in page and "was disabled after 2 failed deliveries" in page


# --- rotating the secret ------------------------------------------------------------------

def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(app: Flask,
                                                                     make_user: Any,
                                                                     make_provider: Any,
                                                                     make_need: Any) -> None:
    provider = make_provider(make_user("Pia Provider"))
    with receiving() as receiver:
        created = register(provider, receiver.url)
        url = f"{API}/{created['id']}"
        assert created["previous_until"] is None
        assert make_user("Otto Other").post(f"{url}/rotate-secret").status_code == 404
        before = utcnow()
        r = provider.post(f"{url}/rotate-secret")
        assert r.status_code == 200, r.get_json()
        rotated = r.get_json()
        old, new = created["secret"], rotated["secret"]
        assert new.startswith("whsec_") and new != old
        overlap = app.config["WEBHOOKS_SECRET_OVERLAP_SECONDS"]
        until = datetime.fromisoformat(rotated["previous_until"])
        assert before + timedelta(seconds=overlap - 5) < until <= utcnow() + timedelta(
            seconds=overlap)
        assert provider.get(url).get_json()["previous_until"] == rotated["previous_until"]
        assert "secret" not in provider.get(url).get_json()
        make_need(make_user("Cy Customer"), title="Tacos")
        assert deliver_due() == 1
        [got] = receiver.received
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert Verifier(old).verify(got.body, got.headers) == \
            Verifier(new).verify(got.body, got.headers)
        # the overlap runs out: only the new secret signs
        db.session.get(Webhook, created["id"]).previous_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
        [delivery] = provider.get(f"{url}/deliveries").get_json()["items"]
        assert provider.post(f"{url}/deliveries/{delivery['id']}/replay").status_code == 202
        assert deliver_due() == 1
        replayed = receiver.received[-1]
        assert len(replayed.headers["webhook-signature"].split(" ")) == 1
        assert Verifier(new).verify(replayed.body, replayed.headers)["data"]["need"]["title"] \
            == "Tacos"
        with pytest.raises(Exception, match="signature"):
            Verifier(old).verify(replayed.body, replayed.headers)
        # a second rotation: the first secret no longer signs at all, the second does
        newest = provider.post(f"{url}/rotate-secret").get_json()["secret"]
        r = provider.post(f"{url}/deliveries/{delivery['id']}/replay")
        assert r.status_code == 202 and deliver_due() == 1
        last = receiver.received[-1]
        assert Verifier(newest).verify(last.body, last.headers)
        assert Verifier(new).verify(last.body, last.headers)
        with pytest.raises(Exception, match="signature"):
            Verifier(old).verify(last.body, last.headers)


def test_what_is_owed_with_a_notification_is_read_before_the_counter_row_is_locked(
        make_user: Any, make_provider: Any, make_need: Any) -> None:
    """Every commit that stores notifications waits for the counter row that gives them ids
    until the one holding it commits; the webhooks and the alert settings of the recipients
    are read before that row is taken, and only the deliveries, which name the ids, after."""
    provider = make_provider(make_user("Pia Provider"))
    r = provider.put("/api/v1/me/alerts", json={"categories": ["catering"]})
    assert r.status_code == 200, r.get_json()
    with receiving() as receiver:
        register(provider, receiver.url)
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(" ".join(statement.split()))

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            need = make_need(make_user("Cy Customer"), title="Tacos for 40")
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)

    def first(prefix: str) -> int:
        return next(i for i, s in enumerate(statements) if s.startswith(prefix))

    locked = first("UPDATE notification_counter")
    assert first("SELECT webhooks.id") < locked
    assert first("SELECT alert_settings.user_id") < locked
    assert first("INSERT INTO alert_queue") < locked  # names no notification
    assert first("INSERT INTO notifications") < first("INSERT INTO webhook_deliveries")
    # and what was owed is as before: the delivery names the stored notification, the alert
    # is queued for the need
    [notification] = db.session.scalars(select(Notification).where(
        Notification.user_id == provider.user.id, Notification.type == "need.matched")).all()
    [delivery] = db.session.scalars(select(WebhookDelivery)).all()
    assert delivery.notification_id == notification.id
    assert json.loads(delivery.payload)["id"] == notification.id
    assert [(a.user_id, a.need_id) for a in db.session.scalars(select(QueuedAlert))] == [
        (provider.user.id, need.id)]
