"""Reading never changes state: every GET route of the app (pages and API), walked as each
kind of signed-in user with data in every state, leaves every committed row as it was.

The one exception is bookkeeping no one acts on: ``api_tokens.last_used_at``, which a bearer
token touches at most every five minutes so its owner can see when it was last used (the
tokens page shows it); ``committed_state`` leaves that column out. Marking notifications read
is a POST with a CSRF token, so a link from another site cannot clear anyone's bell."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import AUSTIN, AuthActions, committed_state, make_test_app
from flask import Flask
from images import png
from pages import dom, messages_shown, value_of
from sqlalchemy import func, select

from marketplace import lifecycle
from marketplace.extensions import db
from marketplace.media import services as media
from marketplace.messages import services as messages
from marketplace.needs import services as needs
from marketplace.notifications.models import Notification
from marketplace.ratings import services as ratings
from marketplace.webhooks import services as webhooks
from marketplace.webhooks.models import WebhookAttempt, WebhookDelivery

# Query strings that make a GET do its fullest work (searching, paging, sorting).
QUERIES: dict[str, dict[str, str]] = {
    "/needs/reach": {"category": "catering", "lat": str(AUSTIN[0]), "lon": str(AUSTIN[1]),
                     "radius_km": "20"},
    "/api/v1/geocode": {"q": "Austin, TX"},
    "/api/v1/needs/suggestions": {"lat": str(AUSTIN[0]), "lon": str(AUSTIN[1]),
                                  "text": "A ?kayak for the #river and a ?ka", "also": "#summer"},
    "/needs/suggestions": {"place_query": "Austin, TX", "text": "A ?kayak and #ri"},
    "/api/v1/notifications": {"after": "0"},
    "/api/v1/needs": {"mine": "true"},
    "/api/v1/needs/<int:need_id>/offers": {"sort": "price"},
    "/needs/<int:need_id>": {"sort": "price"},
    "/jobs": {"tab": "completed"},
}


def _world(make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> dict[str, Any]:
    """A customer with needs in every state, two providers, offers, messages, a rating with a
    reply, a block, unread notifications for everyone."""
    customer = make_user(name="Cara Customer")
    pro, rival = make_provider(handle="pro-one"), make_provider(handle="pro-two")
    open_need = make_need(customer, title="Open need")
    offer = make_offer(open_need, pro, amount=30000)
    make_offer(open_need, rival)
    messages.send(customer.user, offer.id, "Vegan too?")
    done = make_need(customer, title="Done need")
    done_offer = make_offer(done, pro)
    lifecycle.accept(customer.user, done_offer.id)
    lifecycle.complete(customer.user, done.id)
    rating = lifecycle.rate(customer.user, done.id, {"stars": 4, "comment": "Good"})
    ratings.reply(pro.user, rating.id, "Thanks")
    assigned = make_need(customer, title="Assigned need")
    lifecycle.accept(customer.user, make_offer(assigned, rival).id)
    lifecycle.block(customer.user, "pro-two")
    webhook, _secret = webhooks.create(customer.user, {"url": "https://example.com/h",
                                                       "types": ["offer.received"]})
    delivery = WebhookDelivery(webhook_id=webhook.id, notification_id=1, type="offer.received",
                               payload="{}", status="failed", attempts=1)
    db.session.add(delivery)
    db.session.flush()
    db.session.add(WebhookAttempt(delivery_id=delivery.id, duration_ms=3, response_status=500))
    photo = needs.add_photo(customer.user, open_need, png)
    avatar = media.set_avatar(pro.user, png((20, 20), (9, 9, 9)))
    return {"photo_id": photo.id, "digest": avatar.digest, "webhook_id": webhook.id,
            "delivery_id": delivery.id,
            "customer": customer, "pro": pro, "rival": rival, "need_id": open_need.id,
            "event": "offer.received",
            "offer_id": offer.id, "rating_id": rating.id, "handle": "pro-one",
            "token": open_need.share_token, "filename": "app.css",
            "needs": [open_need.id, done.id, assigned.id]}


def _paths(rule: str, world: dict[str, Any]) -> list[str]:
    """Every concrete path of a rule worth reading (each need for a need's pages)."""
    params = re.findall(r"<(?:\w+:)?(\w+)>", rule)
    unknown = set(params) - set(world)
    assert not unknown, f"teach this test the parameters of {rule}: {unknown}"
    needs_ = world["needs"] if "need_id" in params else [world["need_id"]]
    out = []
    for need_id in needs_:
        values = {**world, "need_id": need_id}
        out.append(re.sub(r"<(?:\w+:)?(\w+)>",
                          lambda m, values=values: str(values[m.group(1)]), rule))
    return out


def test_every_get_route_changes_nothing(app: Flask, make_user: Any, make_provider: Any,
                                         make_need: Any, make_offer: Any,
                                         auth: Any) -> None:
    world = _world(make_user, make_provider, make_need, make_offer)
    unread = db.session.scalar(select(func.count()).where(Notification.read_at.is_(None)))
    assert unread >= 8
    readers = [(who, auth.sign_in(world[who]), world[who].token)
               for who in ("customer", "pro", "rival")]
    before = committed_state()
    walked = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()):
            continue
        for path in _paths(rule.rule, world):
            for who, pages, token in readers:
                for headers in ({}, {"Authorization": f"Bearer {token}"}):
                    response = pages.get(path, headers=headers,
                                         query_string=QUERIES.get(rule.rule, {}))
                    response.close()  # a static file is streamed from an open file
                    assert response.status_code < 500, (who, path)
                    db.session.remove()
                    assert committed_state() == before, f"GET {path} as {who} changed state"
                    walked += 1
    assert walked > 200
    assert db.session.scalar(select(func.count()).where(Notification.read_at.is_(None))) == unread


def test_the_notifications_page_marks_read_only_when_asked(make_user: Any, make_need: Any,
                                                           make_offer: Any,
                                                           auth: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    make_offer(need), make_offer(need)
    web = auth.sign_in(customer)
    page = dom(web.get("/notifications"))
    assert len(page.find_all(cls="card fresh unread")) == 2  # highlighted, and still unread
    assert len(dom(web.get("/notifications")).find_all(cls="fresh unread")) == 2
    assert "Mark all as read" in page.text()
    note_ids = sorted(db.session.scalars(select(Notification.id)
                                         .where(Notification.user_id == customer.user.id)))
    r = web.post("/notifications/read", data={"ids": str(note_ids[0])})
    assert r.status_code == 302 and r.headers["Location"] == "/notifications"
    page = dom(web.get("/notifications"))
    unread = page.find_all(cls="fresh unread")
    assert [card.attrs["id"] for card in unread] == [f"notification-{note_ids[1]}"]
    up_to = value_of(page, "up_to")
    assert int(up_to) == note_ids[1]
    make_offer(need)  # arrives after the page was shown: "all" means all that was shown
    assert web.post("/notifications/read", data={"up_to": up_to}).status_code == 302
    assert len(dom(web.get("/notifications")).find_all(cls="fresh unread")) == 1


def test_marking_read_needs_the_pages_csrf_token(backend_app: Flask, app: Flask,
                                                 make_user: Any, make_need: Any,
                                                 make_offer: Any) -> None:
    """A cross-site form post (no token) is refused and marks nothing; the page's own form
    (with the token) works."""
    customer = make_user()
    make_offer(make_need(customer))
    email = customer.user.email
    db.session.remove()
    guarded = make_test_app(backend_app.config["SQLALCHEMY_DATABASE_URI"], WTF_CSRF_ENABLED=True)
    try:
        with guarded.app_context():
            web = AuthActions(guarded).sign_in(email=email, password=customer.password)
            page = dom(web.get("/notifications"))
            up_to = value_of(page, "up_to")
            before = committed_state()
            forged = web.post("/notifications/read", data={"up_to": up_to})
            assert forged.status_code == 400 and "text/html" in forged.content_type
            assert committed_state() == before
            r = web.post("/notifications/read",
                         data={"up_to": up_to, "csrf_token": value_of(page, "csrf_token")})
            assert r.status_code == 302
            assert committed_state() != before
    finally:
        with guarded.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.parametrize("form", [{}, {"up_to": "0"}, {"up_to": "x"}, {"ids": "abc"},
                                  {"ids": "1", "up_to": "1"}])
def test_a_bad_mark_read_form_is_shown_as_an_error(make_user: Any, make_need: Any,
                                                   make_offer: Any, auth: Any,
                                                   form: dict[str, str]) -> None:
    customer = make_user()
    make_offer(make_need(customer))
    web = auth.sign_in(customer)
    before = committed_state()
    r = web.post("/notifications/read", data=form)
    assert r.status_code == 200 and "e-_form" in messages_shown(r)
    assert committed_state() == before
