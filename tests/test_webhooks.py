"""Webhooks against a real local receiver (tests/receiver.py): a notification is delivered
signed as Standard Webhooks says (checked with its reference verifier), retried after a
failing answer, given up and the webhook disabled after persistent failure; nothing goes to a
suspended account's webhook; URLs that point inside are refused; another user cannot see or
touch one's webhook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import error_of
from flask import Flask
from receiver import receiving
from standardwebhooks.webhooks import Webhook as Verifier

from marketplace.extensions import db
from marketplace.moderation import services as moderation
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
    assert other.get(API).get_json()["items"] == []
    listed = owner.get(API).get_json()["items"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert owner.delete(f"{API}/{created['id']}").status_code == 204
    assert owner.get(f"{API}/{created['id']}").status_code == 404
