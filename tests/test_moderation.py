"""Reports and moderation, tried the way an abuser would: a non-admin cannot find or use the
admin routes (404, nothing changes), a report is no way to learn what exists, hidden content
is gone for everyone (and stays in the database), suspension ends every way in at once, and
every action leaves a log row."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import committed_count, committed_rows, need_data

from marketplace.accounts.models import User
from marketplace.moderation import services as moderation
from marketplace.moderation.models import ModerationLog, Report
from marketplace.needs.models import Need
from marketplace.notifications.models import Notification
from marketplace.ratings.models import Rating

MARK = "Zanzibarquux"  # a word to scan every response for


@pytest.fixture
def admin(make_user: Any) -> Any:
    person = make_user(name="Ada Admin")
    moderation.set_admin(person.user.email, True)
    return person


def report(person: Any, **body: Any) -> Any:
    return person.post("/api/v1/reports", json={"reason": "scam", "details": "", **body})


def act(admin: Any, action: str, target_type: str, target_id: int, **extra: Any) -> Any:
    return admin.post("/api/v1/admin/actions", json={
        "action": action, "target_type": target_type, "target_id": target_id, **extra})


ADMIN_CALLS = [
    ("get", "/api/v1/admin/reports", None),
    ("get", "/api/v1/admin/log", None),
    ("post", "/api/v1/admin/reports/{report}/dismiss", {"reason": "x"}),
    ("post", "/api/v1/admin/actions", {"action": "hide", "target_type": "need",
                                       "target_id": "{need}"}),
    ("post", "/api/v1/admin/actions", {"action": "suspend", "target_type": "user",
                                       "target_id": "{admin}"}),
]


def test_a_non_admin_finds_no_admin_routes_and_changes_nothing(
        make_user: Any, make_need: Any, admin: Any, auth: Any) -> None:
    customer, mallory = make_user(), make_user()
    need = make_need(customer)
    assert report(mallory, target_type="need", target_id=need.id).status_code == 404
    filed = report(admin, target_type="need", target_id=need.id)
    assert filed.status_code == 404  # the admin cannot see the need either: reports are as anyone
    provider_report = Report(reporter_id=customer.user.id, target_type="need",
                             target_id=need.id, reason="spam")
    from marketplace.extensions import db
    db.session.add(provider_report)
    db.session.commit()
    ids = {"report": provider_report.id, "need": need.id, "admin": admin.user.id}
    for method, path, body in ADMIN_CALLS:
        if body is not None:
            body = {k: (int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v)
                    for k, v in body.items()}
        r = getattr(mallory, method)(path.format(**ids), json=body)
        assert r.status_code == 404, (path, r.get_json())
    page = auth.sign_in(mallory).get("/admin/reports")
    assert page.status_code == 404
    assert auth.sign_in(mallory).post("/admin/actions", data={
        "action": "hide", "target_type": "need", "target_id": need.id}).status_code == 404
    assert committed_count(ModerationLog) == 0
    assert committed_rows(Need, id=need.id)[0].hidden_at is None
    assert committed_rows(User, id=admin.user.id)[0].suspended_at is None
    assert committed_rows(Report, id=provider_report.id)[0].status == "open"


def test_nobody_reports_what_they_cannot_see(make_user: Any, make_provider: Any,
                                             make_need: Any, make_offer: Any) -> None:
    customer, stranger = make_user(), make_user()
    far = make_provider(base=(48.85, 2.35))  # Paris: an Austin need is not posted to them
    need = make_need(customer)
    pro = make_provider()
    offer = make_offer(need, pro)
    sent = customer.post(f"/api/v1/offers/{offer.id}/messages", json={"body": "hello"})
    assert sent.status_code == 201, sent.get_json()
    message_id = sent.get_json()["id"]
    cannot = [("need", need.id), ("offer", offer.id), ("message", message_id)]
    for person in (stranger, far):
        for kind, target in cannot:
            r = report(person, target_type=kind, target_id=target)
            missing = report(person, target_type=kind, target_id=target + 10_000)
            assert (r.status_code, r.get_json()) == (missing.status_code, missing.get_json())
            assert r.status_code == 404
    assert report(stranger, target_type="profile", handle="no-such-pro").status_code == 404
    assert committed_count(Report) == 0
    # What one can see can be reported, once while it is open.
    assert report(pro, target_type="message", target_id=message_id).status_code == 201
    again = report(pro, target_type="message", target_id=message_id, reason="abuse")
    assert again.status_code == 409
    assert report(customer, target_type="offer", target_id=offer.id).status_code == 201
    assert report(stranger, target_type="profile", handle=pro.provider.handle).status_code == 201
    own = report(pro, target_type="profile", handle=pro.provider.handle)
    assert own.status_code == 422
    assert committed_count(Report) == 3


def _scan(person: Any, auth: Any, urls: list[str]) -> list[str]:
    """The URLs whose answer still shows the mark (API by token, pages by a signed-in
    browser)."""
    browser = auth.sign_in(person)
    shown = []
    for url in urls:
        r = person.get(url) if url.startswith("/api/") else browser.get(url)
        if MARK in r.get_data(as_text=True):
            shown.append(url)
    return shown


def test_a_hidden_need_is_gone_for_everyone_and_stays_in_the_database(
        make_user: Any, make_provider: Any, make_need: Any, admin: Any, auth: Any) -> None:
    customer = make_user()
    pro = make_provider()
    need = make_need(customer, title=f"Cheap {MARK} deals", description=f"{MARK} call me")
    urls = [f"/api/v1/needs/{need.id}", "/api/v1/feed", "/feed", f"/needs/{need.id}",
            "/api/v1/notifications", "/notifications"]
    assert _scan(pro, auth, urls) == urls
    assert report(pro, target_type="need", target_id=need.id).status_code == 201
    queue = admin.get("/api/v1/admin/reports").get_json()["items"]
    assert [r["target_id"] for r in queue] == [need.id]
    assert MARK in queue[0]["target"]["text"]
    r = act(admin, "hide", "need", need.id, reason="scam ad")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["resolved_reports"] == 1
    assert _scan(pro, auth, urls) == []
    assert _scan(customer, auth, [f"/api/v1/needs/{need.id}", "/api/v1/needs",
                                  f"/needs/{need.id}", "/needs"]) == []
    assert pro.get(f"/api/v1/needs/{need.id}").status_code == 404
    offered = pro.post(f"/api/v1/needs/{need.id}/offers", json={"message": "hi"})
    assert offered.status_code == 404
    kept = committed_rows(Need, id=need.id)[0]
    assert MARK in kept.title and kept.hidden_by == admin.user.id
    assert admin.get("/api/v1/admin/reports").get_json()["items"] == []
    # Unhidden, it is back.
    assert act(admin, "unhide", "need", need.id).status_code == 200
    assert f"/api/v1/needs/{need.id}" in _scan(pro, auth, [f"/api/v1/needs/{need.id}"])
    log = admin.get("/api/v1/admin/log").get_json()["items"]
    assert [(e["action"], e["target_id"], e["admin_id"]) for e in log] == [
        ("unhide", need.id, admin.user.id), ("hide", need.id, admin.user.id)]
    assert log[1]["reason"] == "scam ad" and log[1]["subject_user_id"] == customer.user.id


def test_hidden_offers_messages_ratings_and_profiles_are_gone(
        make_user: Any, make_provider: Any, make_job: Any, admin: Any, auth: Any) -> None:
    customer = make_user()
    pro = make_provider()
    job = make_job(customer, pro, stars=2)
    from marketplace.extensions import db
    rating = db.session.get(Rating, job.rating.id)
    rating.comment = f"{MARK} was awful"
    job.offer.message = f"{MARK} offer"
    db.session.commit()
    sent = pro.post(f"/api/v1/offers/{job.offer.id}/messages", json={"body": f"{MARK} hi"})
    handle = pro.provider.handle
    profile_urls = [f"/api/v1/providers/{handle}/ratings", f"/p/{handle}"]
    assert _scan(customer, auth, profile_urls) == profile_urls
    assert customer.get(f"/api/v1/providers/{handle}").get_json()["reputation"]["count"] == 1
    assert act(admin, "hide", "rating", rating.id).status_code == 200
    assert _scan(customer, auth, profile_urls) == []
    # A hidden (fake, abusive) rating no longer counts in the reputation either.
    assert customer.get(f"/api/v1/providers/{handle}").get_json()["reputation"]["count"] == 0
    assert customer.get(f"/api/v1/providers/{handle}/ratings").get_json()["items"] == []
    if sent.status_code == 201:  # the thread of a completed job may be closed
        assert act(admin, "hide", "message", sent.get_json()["id"]).status_code == 200
    thread = [f"/api/v1/offers/{job.offer.id}/messages", f"/needs/{job.need.id}"]
    assert act(admin, "hide", "offer", job.offer.id).status_code == 200
    assert _scan(customer, auth, thread) == []
    assert customer.get(f"/api/v1/offers/{job.offer.id}").status_code == 404
    assert act(admin, "hide", "profile", pro.provider.id).status_code == 200
    assert customer.get(f"/api/v1/providers/{handle}").status_code == 404
    assert auth.sign_in(customer).get(f"/p/{handle}").status_code == 404
    assert report(customer, target_type="profile", handle=handle).status_code == 404
    assert committed_count(ModerationLog) == (4 if sent.status_code == 201 else 3)


def test_hiding_twice_is_a_conflict_and_logs_once(make_need: Any, admin: Any) -> None:
    need = make_need()
    assert act(admin, "hide", "need", need.id).status_code == 200
    assert act(admin, "hide", "need", need.id).status_code == 409
    assert act(admin, "hide", "need", 10**6).status_code == 404
    assert act(admin, "suspend", "need", need.id).status_code == 422
    assert committed_count(ModerationLog) == 1


def test_suspending_ends_sessions_tokens_and_matching(make_user: Any, make_provider: Any,
                                                     admin: Any, auth: Any) -> None:
    pro = make_provider()
    browser = auth.sign_in(pro)
    assert browser.get("/account/sessions").status_code == 200
    assert pro.get("/api/v1/me").status_code == 200
    r = act(admin, "suspend", "user", pro.user.id, reason="fraud")
    assert r.status_code == 200, r.get_json()
    assert browser.get("/account/sessions").status_code == 302  # the old cookie signs nobody in
    assert pro.get("/api/v1/me").status_code == 401
    signin = auth.client().post("/signin", data={"email": pro.user.email,
                                                  "password": pro.password})
    assert signin.status_code == 200 and "suspended" in signin.get_data(as_text=True)
    minted = pro.client.post("/api/v1/tokens", json={"email": pro.user.email,
                                                      "password": pro.password})
    assert minted.status_code == 403
    customer = make_user()
    posted = customer.post("/api/v1/needs", json=need_data())
    assert posted.status_code == 201, posted.get_json()
    assert committed_rows(Notification, user_id=pro.user.id) == []
    assert act(admin, "unsuspend", "user", pro.user.id).status_code == 200
    assert pro.get("/api/v1/me").status_code == 200
    again = customer.post("/api/v1/needs", json=need_data())
    assert again.status_code == 201
    assert len(committed_rows(Notification, user_id=pro.user.id)) == 1  # matched again
    assert [e.action for e in committed_rows(ModerationLog)] == ["suspend", "unsuspend"]


def test_dismissing_a_report_is_logged(make_user: Any, make_provider: Any, admin: Any) -> None:
    pro, customer = make_provider(), make_user()
    rid = report(customer, target_type="profile", handle=pro.provider.handle).get_json()["id"]
    r = admin.post(f"/api/v1/admin/reports/{rid}/dismiss", json={"reason": "fine"})
    assert r.status_code == 200, r.get_json()
    assert admin.post(f"/api/v1/admin/reports/{rid}/dismiss", json={}).status_code == 409
    assert committed_rows(Report, id=rid)[0].status == "dismissed"
    assert [(e.action, e.report_id) for e in committed_rows(ModerationLog)] == [("dismiss", rid)]
    # Dismissed, the customer may report it again.
    assert report(customer, target_type="profile", handle=pro.provider.handle).status_code == 201


def test_admin_is_granted_and_revoked_from_the_cli(app: Any, make_user: Any) -> None:
    person = make_user()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["grant-admin", person.user.email.upper()])
    assert result.exit_code == 0, result.output
    assert committed_rows(User, id=person.user.id)[0].is_admin is True
    assert person.get("/api/v1/admin/reports").status_code == 200
    assert runner.invoke(args=["revoke-admin", person.user.email]).exit_code == 0
    assert person.get("/api/v1/admin/reports").status_code == 404
    assert runner.invoke(args=["grant-admin", "nobody@example.com"]).exit_code != 0


def test_the_pages_carry_report_forms_and_the_queue_acts(
        make_user: Any, make_provider: Any, make_need: Any, make_offer: Any, admin: Any,
        auth: Any) -> None:
    from pages import field_error, links

    customer, pro = make_user(), make_provider()
    need = make_need(customer)
    offer = make_offer(need, pro)
    as_pro = auth.sign_in(pro)
    page = as_pro.get(f"/needs/{need.id}")
    link = f"/report?target_type=need&target_id={need.id}"
    assert link in links(page)
    assert f"/report?target_type=offer&target_id={offer.id}" in links(
        auth.sign_in(customer).get(f"/needs/{need.id}"))
    assert as_pro.get(link).status_code == 200
    sent = as_pro.post("/report", data={"target_type": "need", "target_id": need.id,
                                        "reason": "spam", "details": "x"})
    assert sent.status_code == 302
    bad = as_pro.post("/report", data={"target_type": "need", "target_id": need.id,
                                       "reason": "nonsense"})
    assert bad.status_code == 200 and field_error(bad, "reason")
    hidden_from = as_pro.post("/report", data={"target_type": "need", "target_id": 10**6,
                                               "reason": "spam"})
    assert hidden_from.status_code == 404
    as_admin = auth.sign_in(admin)
    queue = as_admin.get("/admin/reports")
    assert queue.status_code == 200 and need.title in queue.get_data(as_text=True)
    done = as_admin.post("/admin/actions", data={"action": "hide", "target_type": "need",
                                                 "target_id": need.id, "reason": "spam"})
    assert done.status_code == 302
    assert as_pro.get(f"/needs/{need.id}").status_code == 404
    assert "spam" in as_admin.get("/admin/reports").get_data(as_text=True)
    assert [e.action for e in committed_rows(ModerationLog)] == ["hide"]


def test_a_suspended_customers_needs_are_posted_to_nobody(
        make_user: Any, make_provider: Any, make_need: Any, admin: Any) -> None:
    customer, pro = make_user(), make_provider()
    need = make_need(customer, title=f"{MARK} wire me a deposit")
    assert [n["id"] for n in pro.get("/api/v1/feed").get_json()["items"]] == [need.id]
    assert act(admin, "suspend", "user", customer.user.id).status_code == 200
    assert pro.get("/api/v1/feed").get_json()["items"] == []
    assert pro.get(f"/api/v1/needs/{need.id}").status_code == 404
    offered = pro.post(f"/api/v1/needs/{need.id}/offers", json={"message": "hi"})
    assert offered.status_code == 404
    assert act(admin, "unsuspend", "user", customer.user.id).status_code == 200
    assert [n["id"] for n in pro.get("/api/v1/feed").get_json()["items"]] == [need.id]
