"""The access-control matrix: every API operation, tried by every kind of person, against one
table that says who may. The same world for every case (built once per backend, its rows
restored before each case, so what one case changed never reaches the next) — a customer (the
owner) with an open need, a job in progress and a finished, rated job; a provider with a
pending offer on the open need (matched); the provider hired for the jobs (accepted); a
provider who had offered and was then blocked; a provider far away (unmatched); a customer with
no dealings (other); nobody (anonymous) — and each role calls each operation on the owner's
things.

"Denied" is what the API answers for anything you may not reach: 401 without credentials, 404
(or 403) with them — and a denied write changes nothing. "Allowed" is anything else: the rule
let the caller through (a 409 or 422 from the state of things is still past the access rule).
A suspended provider (their token refused) and an admin (no powers outside ``/admin``) try
everything too. A new API operation without a row fails
``test_the_matrix_covers_every_operation``. Web pages and Socket.IO events are not in this
table yet (their rules are the same services', tested in their own modules).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import AUSTIN, Person, committed_state, need_data, rebind, restore, snapshot
from flask import Flask
from images import png

from marketplace import lifecycle
from marketplace.accounts import services as accounts
from marketplace.extensions import db
from marketplace.messages import services as messages
from marketplace.moderation import services as moderation
from marketplace.needs import services as needs
from marketplace.ratings.models import Rating
from marketplace.webhooks import services as webhooks
from marketplace.webhooks.models import WebhookDelivery

DALLAS = (32.7767, -96.7970)
ROLES = ("anonymous", "other", "owner", "matched", "unmatched", "accepted", "blocked",
         "suspended", "admin")
# A suspended account's token signs nobody in (401); an admin has no powers outside /admin.
SIGNED_IN = frozenset(ROLES) - {"anonymous", "suspended"}
EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})
PROVIDERS = frozenset({"matched", "unmatched", "accepted", "blocked"})


@dataclass
class World:
    people: dict[str, Person]
    ids: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    method: str
    rule: str  # as in app.url_map
    path: str  # formatted with World.ids
    allowed: frozenset[str]
    body: Callable[[World, str], Any] | None = None
    why: str = ""


def own_password(w: World, role: str) -> dict[str, str]:
    person = w.people.get(role) or w.people["owner"]
    return {"password": person.password}


def credentials(w: World, role: str) -> dict[str, str]:
    person = w.people.get(role) or w.people["other"]
    return {"email": person.user.email, "password": person.password, "name": "matrix"}


API = "/api/v1"
MATRIX: tuple[Row, ...] = (
    Row("GET", "/categories", "/categories", EVERYONE, why="public list"),
    Row("GET", "/docs", "/docs", EVERYONE, why="the API explorer"),
    Row("GET", "/openapi.json", "/openapi.json", EVERYONE, why="the document"),
    Row("GET", "/events/asyncapi.yaml", "/events/asyncapi.yaml", EVERYONE,
        why="the events' document"),
    Row("GET", "/events/schemas/<event>.json", "/events/schemas/need.matched.json", EVERYONE,
        why="an event's schema"),
    Row("GET", "/geocode", "/geocode?q=Austin", SIGNED_IN),
    Row("GET", "/trends", f"/trends?lat={AUSTIN[0]}&lon={AUSTIN[1]}", SIGNED_IN,
        why="aggregates only, k floor"),
    Row("GET", "/needs/suggestions",
        f"/needs/suggestions?lat={AUSTIN[0]}&lon={AUSTIN[1]}&text=%3Fka", SIGNED_IN,
        why="aggregates only, k floor, as trends"),
    Row("POST", "/users", "/users", EVERYONE,
        lambda w, r: {"email": f"new-{r}@example.com", "password": "long enough pw",
                      "name": "New Person"}, why="sign-up"),
    Row("POST", "/tokens", "/tokens", EVERYONE - {"suspended"}, credentials,
        why="sign-in with one's own password; a suspended account is refused (403)"),
    Row("GET", "/tokens", "/tokens", SIGNED_IN, why="one's own tokens"),
    Row("DELETE", "/tokens/<int:token_id>", "/tokens/{owner_token}", frozenset({"owner"})),
    Row("GET", "/me", "/me", SIGNED_IN),
    Row("PATCH", "/me", "/me", SIGNED_IN, lambda w, r: {"phone": "+1 512 555 0100"}),
    Row("DELETE", "/me", "/me", SIGNED_IN, own_password, why="erasing oneself"),
    Row("GET", "/me/export", "/me/export", SIGNED_IN),
    Row("PUT", "/me/provider", "/me/provider", SIGNED_IN,
        lambda w, r: {"handle": f"new-{r}", "display_name": "New", "categories": ["catering"],
                      "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]}, "radius_km": 10}),
    Row("GET", "/me/alerts", "/me/alerts", SIGNED_IN),
    Row("PUT", "/me/alerts", "/me/alerts", SIGNED_IN,
        lambda w, r: {"categories": ["catering"], "direct_asks": True}),
    Row("GET", "/me/blocks", "/me/blocks", SIGNED_IN),
    Row("PUT", "/me/blocks/<string:handle>", "/me/blocks/{matched_handle}",
        SIGNED_IN - {"matched"}, why="anyone may block a provider, but not themselves"),
    Row("DELETE", "/me/blocks/<string:handle>", "/me/blocks/{blocked_handle}", SIGNED_IN,
        why="lifts the caller's own block; with none to lift, 204 all the same (idempotent)"),
    Row("GET", "/me/providers", "/me/providers", SIGNED_IN),
    Row("GET", "/webhooks", "/webhooks", SIGNED_IN, why="one's own webhooks"),
    Row("POST", "/webhooks", "/webhooks", SIGNED_IN,
        lambda w, r: {"url": "https://example.com/hooks", "types": ["need.matched"]}),
    Row("GET", "/webhooks/<int:webhook_id>", "/webhooks/{webhook}", frozenset({"owner"})),
    Row("PATCH", "/webhooks/<int:webhook_id>", "/webhooks/{webhook}", frozenset({"owner"}),
        lambda w, r: {"types": ["need.matched", "offer.received"]}),
    Row("POST", "/webhooks/<int:webhook_id>/rotate-secret", "/webhooks/{webhook}/rotate-secret",
        frozenset({"owner"})),
    Row("DELETE", "/webhooks/<int:webhook_id>", "/webhooks/{webhook}", frozenset({"owner"})),
    Row("GET", "/webhooks/<int:webhook_id>/deliveries", "/webhooks/{webhook}/deliveries",
        frozenset({"owner"})),
    Row("GET", "/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/attempts",
        "/webhooks/{webhook}/deliveries/{delivery}/attempts", frozenset({"owner"})),
    Row("POST", "/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/replay",
        "/webhooks/{webhook}/deliveries/{delivery}/replay", frozenset({"owner"})),
    Row("GET", "/me/providers/<string:handle>", "/me/providers/{matched_handle}",
        frozenset({"owner"}), why="a record only of providers one dealt with"),
    Row("PUT", "/me/providers/<string:handle>", "/me/providers/{matched_handle}",
        frozenset({"owner"}), lambda w, r: {"note": "private"}),
    Row("GET", "/notifications", "/notifications", SIGNED_IN),
    Row("POST", "/notifications/read", "/notifications/read", SIGNED_IN,
        lambda w, r: {"up_to": 0}),
    Row("GET", "/feed", "/feed", PROVIDERS, why="a provider's own feed"),
    Row("POST", "/needs", "/needs", SIGNED_IN, lambda w, r: need_data()),
    Row("GET", "/needs", "/needs", SIGNED_IN, why="one's own needs"),
    Row("GET", "/needs/<int:need_id>", "/needs/{open}",
        frozenset({"owner", "matched", "accepted"}),
        why="the owner, and providers in reach and not blocked"),
    Row("PATCH", "/needs/<int:need_id>", "/needs/{open}", frozenset({"owner"}),
        lambda w, r: {"description": f"Edited {r}"}, why="only the customer edits"),
    Row("POST", "/needs/<int:need_id>/cancel", "/needs/{open}/cancel", frozenset({"owner"}),
        lambda w, r: {"reason": "plans changed"}),
    Row("POST", "/needs/<int:need_id>/complete", "/needs/{job}/complete", frozenset({"owner"})),
    Row("GET", "/needs/<int:need_id>/offers", "/needs/{open}/offers",
        frozenset({"owner", "matched", "accepted"})),
    Row("POST", "/needs/<int:need_id>/offers", "/needs/{open}/offers",
        frozenset({"matched", "accepted"}),
        lambda w, r: {"price": {"amount": 30000, "currency": "USD"}},
        why="providers who see it (matched has offered already: 409, past the rule)"),
    # Images: one's own avatar; a need's photos go with the need (JSON bodies here: 415 past
    # the rule for whoever may upload)
    Row("PUT", "/me/avatar", "/me/avatar", SIGNED_IN),
    Row("DELETE", "/me/avatar", "/me/avatar", SIGNED_IN),
    Row("POST", "/needs/<int:need_id>/photos", "/needs/{open}/photos", frozenset({"owner"}),
        why="its customer only; a provider who sees it: 403, anyone else 404"),
    Row("GET", "/needs/<int:need_id>/photos/<int:photo_id>", "/needs/{open}/photos/{photo}",
        frozenset({"owner", "matched", "accepted"}), why="whoever may see the need"),
    Row("GET", "/needs/<int:need_id>/photos/<int:photo_id>/small",
        "/needs/{open}/photos/{photo}/small", frozenset({"owner", "matched", "accepted"})),
    Row("DELETE", "/needs/<int:need_id>/photos/<int:photo_id>", "/needs/{open}/photos/{photo}",
        frozenset({"owner"})),
    Row("POST", "/needs/<int:need_id>/rating", "/needs/{done}/rating", frozenset({"owner"}),
        lambda w, r: {"stars": 4}),
    Row("GET", "/offers", "/offers", PROVIDERS, why="a provider's own offers"),
    Row("GET", "/offers/<int:offer_id>", "/offers/{pending}", frozenset({"owner", "matched"})),
    Row("PATCH", "/offers/<int:offer_id>", "/offers/{pending}", frozenset({"matched"}),
        lambda w, r: {"price": {"amount": 31000, "currency": "USD"}}),
    Row("POST", "/offers/<int:offer_id>/accept", "/offers/{pending}/accept",
        frozenset({"owner"}), lambda w, r: {}),
    Row("POST", "/offers/<int:offer_id>/withdraw", "/offers/{pending}/withdraw",
        frozenset({"matched"})),
    Row("GET", "/offers/<int:offer_id>/messages", "/offers/{job_offer}/messages",
        frozenset({"owner", "accepted"})),
    Row("POST", "/offers/<int:offer_id>/messages", "/offers/{job_offer}/messages",
        frozenset({"owner", "accepted"}), lambda w, r: {"body": "hello"}),
    Row("GET", "/providers/<string:handle>", "/providers/{matched_handle}", EVERYONE,
        why="public profiles"),
    Row("GET", "/providers/<string:handle>/ratings", "/providers/{accepted_handle}/ratings",
        EVERYONE),
    Row("POST", "/ratings/<int:rating_id>/reply", "/ratings/{rating}/reply",
        frozenset({"accepted"}), lambda w, r: {"body": "Thank you"}),
    # Reports and moderation
    Row("POST", "/reports", "/reports", frozenset({"owner", "matched", "accepted"}),
        lambda w, r: {"target_type": "need", "target_id": w.ids["open"], "reason": "spam"},
        why="only what one can see (the owner's own: 422, past the rule)"),
    Row("GET", "/me/reports", "/me/reports", SIGNED_IN),
    Row("GET", "/admin/reports", "/admin/reports", ADMIN, why="404 to everyone else"),
    Row("GET", "/admin/log", "/admin/log", ADMIN),
    Row("POST", "/admin/actions", "/admin/actions", ADMIN,
        lambda w, r: {"action": "hide", "target_type": "need", "target_id": w.ids["open"],
                      "reason": "matrix"}),
    Row("POST", "/admin/reports/<int:report_id>/dismiss", "/admin/reports/{report}/dismiss",
        ADMIN, lambda w, r: {"reason": "matrix"}),
    # Mail: verification, reset, changes
    Row("POST", "/verification", "/verification", EVERYONE, lambda w, r: {"token": "x" * 40},
        why="the link's token is the credential (a wrong one: 422)"),
    Row("POST", "/me/verification", "/me/verification", SIGNED_IN),
    Row("POST", "/password-reset", "/password-reset", EVERYONE,
        lambda w, r: {"email": "anyone@example.com"}, why="the same answer for every address"),
    Row("POST", "/password-reset/confirm", "/password-reset/confirm", EVERYONE,
        lambda w, r: {"token": "x" * 40, "password": "a new long password"}),
    Row("POST", "/email-change/confirm", "/email-change/confirm", EVERYONE,
        lambda w, r: {"token": "x" * 40}),
    Row("POST", "/me/password", "/me/password", SIGNED_IN,
        lambda w, r: {"current_password": own_password(w, r)["password"],
                      "password": "a new long password"}),
    Row("POST", "/me/email", "/me/email", SIGNED_IN,
        lambda w, r: {"email": f"moved-{r}@example.com", **own_password(w, r)}),
)
BY_KEY = {(row.method, row.rule): row for row in MATRIX}


#: backend -> its world and the rows it is made of (``world``)
WORLDS: dict[str, tuple[World, Any]] = {}


@pytest.fixture
def world(backend: str, make_user: Any, make_provider: Any, make_need: Any,
          make_offer: Any) -> World:
    """The world of the module docstring, in this test's database: built by the first case
    of each backend, restored from its rows for every other."""
    if backend in WORLDS:
        built, rows = WORLDS[backend]
        restore(rows)
        for person in built.people.values():
            rebind(person)
        return built
    built = build_world(make_user, make_provider, make_need, make_offer)
    WORLDS[backend] = (built, snapshot())
    return built


def build_world(make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> World:
    owner, other = make_user("Olive Owner"), make_user("Otto Other")
    matched = make_provider(make_user("Mia Matched"))
    accepted = make_provider(make_user("Abe Accepted"))
    blocked = make_provider(make_user("Bo Blocked"))
    unmatched = make_provider(make_user("Uma Unmatched"), base=DALLAS)
    suspended = make_provider(make_user("Sid Suspended"))
    admin = make_user("Ada Admin")
    moderation.set_admin(admin.user.email, True)
    w = World({"owner": owner, "other": other, "matched": matched, "accepted": accepted,
               "blocked": blocked, "unmatched": unmatched, "suspended": suspended,
               "admin": admin})
    open_need = make_need(owner, title="Open need")
    pending = make_offer(open_need, matched)
    photo = needs.add_photo(owner.user, open_need, png)
    make_offer(open_need, blocked)
    lifecycle.block(owner.user, blocked.provider.handle)
    job = make_need(owner, title="Job need")
    job_offer = make_offer(job, accepted)
    lifecycle.accept(owner.user, job_offer.id)
    messages.send(owner.user, job_offer.id, "See you then")
    done = make_need(owner, title="Done need")
    done_offer = make_offer(done, accepted)
    lifecycle.accept(owner.user, done_offer.id)
    lifecycle.complete(owner.user, done.id)
    lifecycle.rate(owner.user, done.id, {"stars": 5})
    rating = db.session.query(Rating).filter_by(need_id=done.id).one()
    owner_token = accounts.list_tokens(owner.user)[0]
    webhook, _secret = webhooks.create(owner.user, {"url": "https://example.com/hooks",
                                                    "types": ["need.matched"]})
    delivery = WebhookDelivery(webhook_id=webhook.id, notification_id=1, type="need.matched",
                               payload="{}", status="failed", attempts=3)
    db.session.add(delivery)
    db.session.flush()
    report = moderation.report(matched.user, {"target_type": "profile",
                                              "handle": accepted.provider.handle,
                                              "reason": "spam"})
    moderation.act(admin.user, {"action": "suspend", "target_type": "user",
                                "target_id": suspended.user.id, "reason": "matrix"})
    w.ids = {"open": open_need.id, "photo": photo.id, "pending": pending.id, "job": job.id,
             "job_offer": job_offer.id, "done": done.id, "rating": rating.id,
             "owner_token": owner_token.id, "report": report.id, "webhook": webhook.id,
             "delivery": delivery.id,
             "matched_handle": matched.provider.handle,
             "accepted_handle": accepted.provider.handle,
             "blocked_handle": blocked.provider.handle}
    db.session.commit()
    return w


def test_the_matrix_covers_every_operation(backend_app: Flask) -> None:
    operations = {(method, rule.rule[len(API):]) for rule in backend_app.url_map.iter_rules()
                  if rule.rule.startswith(API + "/")
                  for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert operations == set(BY_KEY), (
        f"operations without a row: {sorted(operations - set(BY_KEY))}; "
        f"rows without an operation: {sorted(set(BY_KEY) - operations)}")


DENIED = {401, 403, 404}
CASES = [pytest.param(row, role, id=f"{row.method} {row.rule} as {role}")
         for row in MATRIX for role in ROLES]


@pytest.mark.parametrize(("row", "role"), CASES)
def test_access(world: World, client: Any, row: Row, role: str) -> None:
    headers = {}
    if role != "anonymous":
        headers["Authorization"] = f"Bearer {world.people[role].token}"
    kwargs: dict[str, Any] = {"headers": headers}
    if row.body is not None:
        kwargs["json"] = row.body(world, role)
    elif row.method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    before = committed_state() if row.method != "GET" and role not in row.allowed else None
    response = client.open(API + row.path.format(**world.ids), method=row.method, **kwargs)
    status = response.status_code
    assert status < 500, (status, response.get_data(as_text=True)[:300])
    if role in row.allowed:
        assert status not in DENIED, (
            f"{role} was refused {row.method} {row.rule}: {status} "
            f"{response.get_data(as_text=True)[:300]}")
    else:
        assert status in DENIED, (
            f"{role} reached {row.method} {row.rule}: {status} "
            f"{response.get_data(as_text=True)[:300]}")
        if role == "anonymous":
            assert status == 401
        if before is not None:
            db.session.remove()
            assert committed_state() == before, f"a refused {row.method} changed the database"
