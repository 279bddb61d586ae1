"""Every paginated list of the API sends ``Link: <...>; rel="next"`` (RFC 8288) when a next
page exists, and following it alone — never reading the body's cursor — walks the whole list,
each item once. The lists are found in the OpenAPI document (every operation documenting a
``Link`` header), so a new list without a walk here fails."""

from __future__ import annotations

from typing import Any

from conftest import error_of
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.moderation import services as moderation
from marketplace.webhooks.models import WebhookAttempt, WebhookDelivery

API = "/api/v1"


def _walk(person: Any, url: str) -> list[Any]:
    """Follow ``Link`` from ``url`` with one item per page, to the end."""
    items: list[Any] = []
    pages = 0
    next_url: str | None = f"{url}{'&' if '?' in url else '?'}limit=1"
    while next_url:
        r = person.get(next_url)
        assert r.status_code == 200, (next_url, r.get_json())
        items += r.get_json()["items"]
        link = r.headers.get("Link")
        next_url = None
        if link is not None:
            assert link.startswith("<") and link.endswith('>; rel="next"'), link
            next_url = link[1:link.index(">")]
            assert "limit=1" in next_url
        pages += 1
        assert pages < 100, "the Link never ends"
    return items


def test_every_list_walks_by_link_alone(app: Any, make_user: Any, make_provider: Any,
                                        make_need: Any, make_offer: Any, make_job: Any) -> None:
    customer, pro, other = make_user(), make_provider(), make_provider()
    moderation.set_admin(customer.user.email, True)
    hooks = [customer.post(f"{API}/webhooks", json={
        "url": f"https://example.com/hook-{i}", "types": ["offer.received"]}) for i in range(2)]
    assert all(h.status_code == 201 for h in hooks), [h.get_json() for h in hooks]
    needs = [make_need(customer) for _ in range(2)]
    offers = [make_offer(n, pro) for n in needs] + [make_offer(needs[0], other)]
    for body in ("Is noon fine?", "And parking?"):
        assert customer.post(f"{API}/offers/{offers[0].id}/messages",
                             json={"body": body}).status_code == 201
    for _ in range(2):
        make_job(customer, pro, stars=5)
    assert customer.post(f"{API}/tokens", json={
        "email": customer.user.email, "password": "correct horse battery",
        "name": "second"}).status_code == 201
    for person in (make_provider(), make_provider()):
        handle = person.provider.handle
        assert customer.post(f"{API}/reports", json={
            "target_type": "profile", "handle": handle, "reason": "scam",
            "details": "Asks for payment up front"}).status_code == 201, handle
        assert customer.put(f"{API}/me/blocks/{handle}", json={}).status_code == 200
    for _ in range(2):
        hidden = make_need(make_user())
        r = customer.post(f"{API}/admin/actions", json={
            "action": "hide", "target_type": "need", "target_id": hidden.id, "reason": "Spam"})
        assert r.status_code in (200, 201), error_of(r)
    handle = pro.provider.handle
    # two tries of one delivery, as the worker records them (none runs here)
    first = db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.webhook_id == hooks[0].get_json()["id"])).first()
    for status in (500, 200):
        tried = WebhookAttempt(delivery_id=first.id, duration_ms=12, response_status=status)
        db.session.add(tried)
    db.session.commit()
    walks = {
        "listMyNeeds": (customer, f"{API}/needs?status=open"),
        "getFeed": (other, f"{API}/feed"),
        "listNeedOffers": (customer, f"{API}/needs/{needs[0].id}/offers"),
        "listMyOffers": (pro, f"{API}/offers"),
        "listMessages": (customer, f"{API}/offers/{offers[0].id}/messages"),
        "listTokens": (customer, f"{API}/tokens"),
        "listCategories": (customer, f"{API}/categories"),
        "listProviderRatings": (customer, f"{API}/providers/{handle}/ratings"),
        "listBlocks": (customer, f"{API}/me/blocks"),
        "listMyProviders": (customer, f"{API}/me/providers"),
        "listMyReports": (customer, f"{API}/me/reports"),
        "listOpenReports": (customer, f"{API}/admin/reports"),
        "listModerationLog": (customer, f"{API}/admin/log"),
        "listNotifications": (customer, f"{API}/notifications?after_seq=0"),
        "listWebhooks": (customer, f"{API}/webhooks"),
        # the offers above owed each webhook a delivery (none is sent: no worker runs here)
        "listWebhookDeliveries": (customer,
                                  f"{API}/webhooks/{hooks[0].get_json()['id']}/deliveries"),
        "listWebhookDeliveryAttempts": (
            customer, f"{API}/webhooks/{hooks[0].get_json()['id']}/deliveries/"
            f"{tried.delivery_id}/attempts"),
    }
    doc = customer.get(f"{API}/openapi.json").get_json()
    linked = {op["operationId"] for item in doc["paths"].values() for op in item.values()
              if isinstance(op, dict) and "Link" in op.get("responses", {}).get("200", {})
              .get("headers", {})}
    assert linked == set(walks), "every list that sends Link is walked here"
    for op_id, (person, url) in walks.items():
        walked = _walk(person, url)
        whole = person.get(f"{url}{'&' if '?' in url else '?'}limit=100").get_json()["items"]
        assert len(whole) >= 2, (op_id, whole)
        assert walked == whole, op_id


def test_notifications_link_by_the_count_the_caller_pages_by(make_user: Any,
                                                             make_need: Any,
                                                             make_offer: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    for _ in range(3):
        make_offer(need)
    by_id = customer.get(f"{API}/notifications?after=0&limit=2")
    body = by_id.get_json()
    link = by_id.headers["Link"]
    assert f"after={body['last_id']}" in link and "after_seq" not in link
    last = customer.get(f"{API}/notifications?after_seq=2&limit=2")
    assert len(last.get_json()["items"]) == 1 and "Link" not in last.headers
    full = customer.get(f"{API}/notifications?after_seq=1&limit=2")  # exactly the rest
    assert len(full.get_json()["items"]) == 2 and "Link" not in full.headers
