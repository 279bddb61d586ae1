"""E-mail alerts over the real test SMTP server (``mailbox``): who gets a mail when a need
matches them while they are not online, batching per ALERTS_INTERVAL_SECONDS (the send pass
is called directly with a chosen ``now``, never slept for), and the one-click unsubscribe link
followed the way a person, their mail program (RFC 8058) and a forger would."""

from __future__ import annotations

import logging
import secrets
import socket
from datetime import timedelta
from typing import Any

import pytest
from conftest import PUBLIC_URL, committed_count, error_of
from sqlalchemy import select, update

from marketplace import lifecycle
from marketplace.accounts import sessions
from marketplace.accounts.models import LiveConnection, User
from marketplace.alerts import services as alerts
from marketplace.alerts.models import AlertSettings, QueuedAlert
from marketplace.db_types import utcnow
from marketplace.extensions import db
from marketplace.needs.models import Need

INTERVAL = 300


def opted_in(person: Any, categories: tuple[str, ...] = ("catering",), **flags: bool) -> Any:
    r = person.put("/api/v1/me/alerts", json={"categories": list(categories), **flags})
    assert r.status_code == 200, r.get_json()
    return person


def online(person: Any) -> str:
    """What the Socket.IO connect handler records for a new connection."""
    sid = secrets.token_hex(8)
    sessions.connected(sid, person.user)
    return sid


def alert_mails(mailbox: Any, person: Any) -> list[Any]:
    return [m for m in mailbox.to(person.user.email) if "near you" in m.subject]


def later(seconds: float) -> Any:
    return utcnow() + timedelta(seconds=seconds)


# --- who is mailed --------------------------------------------------------------------------


def test_offline_opted_in_provider_gets_one_mail_for_two_needs_per_interval(
        app, mailbox, make_provider, make_need):
    app.config["ALERTS_INTERVAL_SECONDS"] = INTERVAL
    pro = opted_in(make_provider())
    first = make_need(title="Catering for 20 people", budget={"amount": 125000, "currency": "USD"})
    second = make_need(title="Lunch for the office team")
    assert alerts.send_due(utcnow()) == 1
    [mail] = alert_mails(mailbox, pro)
    assert mail.subject == "2 new needs near you on Nearby"
    text = mail.text
    for need in (first, second):
        assert need.title in text and f"{PUBLIC_URL}/needs/{need.id}" in text
    assert "$1,250.00" in text
    assert "100 Congress" not in text  # the private address is never mailed
    # RFC 8058: a one-click unsubscribe the mail program can POST to
    unsubscribe = mail.link(f"{PUBLIC_URL}/alerts/unsubscribe/")
    assert str(mail.message["List-Unsubscribe"]).strip() == f"<{PUBLIC_URL}{unsubscribe}>"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert committed_count(QueuedAlert) == 0

    third = make_need(title="Dinner for a birthday party")
    assert alerts.send_due(later(INTERVAL - 30)) == 0  # within the interval: waits
    assert len(alert_mails(mailbox, pro)) == 1
    assert alerts.send_due(later(INTERVAL + 1)) == 1
    assert len(alert_mails(mailbox, pro)) == 2
    assert third.title in alert_mails(mailbox, pro)[-1].text
    assert first.title not in alert_mails(mailbox, pro)[-1].text  # each need mailed once
    assert alerts.send_due(later(3 * INTERVAL)) == 0


def test_online_provider_gets_no_mail_decided_at_queue_and_at_send_time(
        app, mailbox, make_provider, make_need):
    always_on = opted_in(make_provider())
    online(always_on)
    opened_later = opted_in(make_provider())
    stale = opted_in(make_provider())
    sid = online(stale)
    db.session.execute(update(LiveConnection).where(LiveConnection.sid == sid)
                       .values(connected_at=utcnow() - timedelta(hours=1)))  # its process died
    db.session.commit()
    make_need()
    assert {row.user_id for row in db.session.scalars(select(QueuedAlert))} == {
        opened_later.user.id, stale.user.id}
    online(opened_later)  # the page opened after the need matched: it shows the need itself
    assert alerts.send_due(utcnow()) == 1
    assert alert_mails(mailbox, always_on) == [] and alert_mails(mailbox, opened_later) == []
    assert len(alert_mails(mailbox, stale)) == 1
    assert committed_count(QueuedAlert) == 0  # nothing left to mail later either


def test_alerts_are_off_by_default_and_per_category(app, mailbox, make_provider, make_need):
    default = make_provider()
    other_category = opted_in(make_provider(categories=("catering", "plumbing")), ("plumbing",))
    assert default.get("/api/v1/me/alerts").get_json() == {
        "categories": [], "direct_asks": False, "tags": False}
    make_need()
    assert alerts.send_due(utcnow()) == 0
    assert mailbox.mails == [] and committed_count(QueuedAlert) == 0
    make_need(category="plumbing", title="A leaking kitchen tap")
    assert alerts.send_due(utcnow()) == 1
    assert "leaking kitchen tap" in alert_mails(mailbox, other_category)[0].text
    assert alert_mails(mailbox, default) == []


def test_direct_asks_alert_only_when_switched_on(app, mailbox, make_provider, make_need):
    far = (40.7128, -74.0060)  # New York: only an @mention reaches them
    asked = opted_in(make_provider(handle="dana-cooks", base=far), (), direct_asks=True)
    not_asked = opted_in(make_provider(handle="sam-cooks", base=far), ("plumbing",))
    make_need(title="Catering for 20 people", description="@dana-cooks @sam-cooks can you?")
    assert alerts.send_due(utcnow()) == 1
    assert len(alert_mails(mailbox, asked)) == 1 and alert_mails(mailbox, not_asked) == []


# --- what is left out ------------------------------------------------------------------------


def test_blocked_customers_need_is_never_mailed(app, mailbox, make_user, make_provider,
                                                 make_need):
    customer = make_user()
    blocked = opted_in(make_provider())
    lifecycle.block(customer.user, blocked.provider.handle)
    make_need(customer)
    assert committed_count(QueuedAlert) == 0
    # blocked after the need was queued: left out at send time
    later_blocked = opted_in(make_provider())
    make_need(customer, title="Second catering need")
    lifecycle.block(customer.user, later_blocked.provider.handle)
    assert alerts.send_due(utcnow()) == 0
    assert mailbox.mails == [] and committed_count(QueuedAlert) == 0


def test_closed_hidden_and_suspended_are_left_out_at_send_time(
        app, mailbox, make_user, make_provider, make_need):
    pro = opted_in(make_provider())
    customer = make_user()
    cancelled = make_need(customer, title="Cancelled catering")
    hidden = make_need(title="Hidden catering")
    kept = make_need(title="Still open catering")
    lifecycle.cancel(customer.user, cancelled.id, "plans changed")
    db.session.execute(update(Need).where(Need.id == hidden.id).values(hidden_at=utcnow()))
    db.session.commit()
    assert alerts.send_due(utcnow()) == 1
    [mail] = alert_mails(mailbox, pro)
    assert mail.subject == "1 new need near you on Nearby"
    assert kept.title in mail.text
    assert cancelled.title not in mail.text and hidden.title not in mail.text

    suspended = opted_in(make_provider())
    make_need(title="Another catering need")
    db.session.execute(update(User).where(User.id == suspended.user.id)
                       .values(suspended_at=utcnow()))
    db.session.commit()
    assert alerts.send_due(later(INTERVAL + 1)) == 1  # the first provider, not the suspended
    assert alert_mails(mailbox, suspended) == []


# --- sending: leases and failures ---------------------------------------------------------


def test_a_held_lease_is_not_sent_twice_and_a_dead_senders_lease_runs_out(
        app, mailbox, make_provider, make_need):
    pro = opted_in(make_provider())
    make_need()
    lease = app.config["ALERTS_LEASE_SECONDS"]
    held = utcnow() + timedelta(seconds=lease)  # another sender's claim, not yet recorded
    db.session.execute(update(AlertSettings).where(AlertSettings.user_id == pro.user.id)
                       .values(lease_until=held))
    db.session.commit()
    assert alerts.send_due(utcnow()) == 0 and alert_mails(mailbox, pro) == []
    assert alerts.send_due(later(lease + 1)) == 1  # it died: its lease ran out
    assert alerts.send_due(later(lease + 2)) == 0
    assert len(alert_mails(mailbox, pro)) == 1


def test_a_mail_server_that_is_away_leaves_the_batch_for_the_next_pass(
        app, mailbox, make_provider, make_need, monkeypatch, caplog):
    pro = opted_in(make_provider())
    need = make_need()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setattr(app.extensions["mailman"], "port", closed)  # nothing listens there
    monkeypatch.setattr(logging.getLogger("marketplace.mail"), "disabled", False)
    assert alerts.send_due(utcnow()) == 0
    assert "could not send the 'alerts' mail" in caplog.text
    assert committed_count(QueuedAlert) == 1
    monkeypatch.undo()
    assert alerts.send_due(utcnow()) == 1  # not held back by the interval: nothing went out
    assert need.title in alert_mails(mailbox, pro)[0].text


def test_send_alerts_command(app, mailbox, make_provider, make_need):
    pro = opted_in(make_provider())
    make_need()
    result = app.test_cli_runner().invoke(args=["send-alerts"])
    assert result.exit_code == 0, result.output
    assert "Sent 1 alert mails." in result.output
    assert len(alert_mails(mailbox, pro)) == 1


# --- unsubscribing ---------------------------------------------------------------------------


def _mailed_link(mailbox: Any, pro: Any) -> str:
    assert alerts.send_due(utcnow()) >= 1
    return alert_mails(mailbox, pro)[-1].link(f"{PUBLIC_URL}/alerts/unsubscribe/")


def test_unsubscribe_link_works_without_signing_in(app, mailbox, make_provider, make_need):
    pro = opted_in(make_provider(), direct_asks=True, tags=True)
    make_need()
    path = _mailed_link(mailbox, pro)
    make_need(title="Queued before unsubscribing")
    anonymous = app.test_client()
    page = anonymous.get(path)  # a mail scanner opening the link changes nothing
    assert page.status_code == 200 and "Stop all alerts" in page.get_data(as_text=True)
    assert pro.get("/api/v1/me/alerts").get_json()["categories"] == ["catering"]
    done = anonymous.post(path)
    assert done.status_code == 200 and "Alerts stopped" in done.get_data(as_text=True)
    assert pro.get("/api/v1/me/alerts").get_json() == {
        "categories": [], "direct_asks": False, "tags": False}
    assert committed_count(QueuedAlert) == 0
    make_need(title="After unsubscribing")
    assert alerts.send_due(later(INTERVAL + 1)) == 0


def test_rfc8058_one_click_post_with_csrf_on(app, mailbox, make_provider, make_need,
                                             monkeypatch):
    pro = opted_in(make_provider())
    make_need()
    path = _mailed_link(mailbox, pro)
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    r = app.test_client().post(path, data="List-Unsubscribe=One-Click",
                               content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200
    assert pro.get("/api/v1/me/alerts").get_json()["categories"] == []
    assert app.test_client().post(path).status_code == 200  # again: idempotent


def test_forged_altered_and_expired_links_are_refused(app, mailbox, make_provider, make_need,
                                                      monkeypatch):
    pro = opted_in(make_provider())
    victim = opted_in(make_provider())
    make_need()
    path = _mailed_link(mailbox, pro)
    token = path.rsplit("/", 1)[1]
    anonymous = app.test_client()
    forged = [
        "/alerts/unsubscribe/" + alerts._serializer().dumps(victim.user.id)[:-2] + "xx",
        "/alerts/unsubscribe/" + token.replace(token.split(".")[0], "MTIzNDU", 1),  # other id
        "/alerts/unsubscribe/not-a-token",
    ]
    for bad in forged:
        for method in (anonymous.get, anonymous.post):
            r = method(bad)
            assert r.status_code == 400, bad
            assert "not one we sent" in r.get_data(as_text=True)
    monkeypatch.setitem(app.config, "ALERTS_UNSUBSCRIBE_DAYS", -1)  # every link is too old
    r = anonymous.post(path)
    assert r.status_code == 400 and "expired" in r.get_data(as_text=True)
    monkeypatch.undo()
    for person in (pro, victim):
        assert person.get("/api/v1/me/alerts").get_json()["categories"] == ["catering"]


# --- settings: API and page ------------------------------------------------------------------


@pytest.mark.parametrize("body, field", [
    ({"categories": ["no-such-thing"]}, "categories"),
    ({"categories": "catering"}, "categories"),
    ({"direct_asks": "sometimes"}, "direct_asks"),
    ({"categories": ["catering"] * 21}, "categories"),
])
def test_bad_settings_are_refused_naming_the_field(app, make_provider, body, field):
    pro = opted_in(make_provider())
    r = pro.put("/api/v1/me/alerts", json=body)
    assert r.status_code == 422, r.get_json()
    assert field in error_of(r)["fields"]
    assert pro.get("/api/v1/me/alerts").get_json()["categories"] == ["catering"]


def test_settings_page_saves_the_same_settings(app, auth, make_provider):
    pro = make_provider()
    web = auth.sign_in(pro)
    page = web.get("/alerts")
    assert page.status_code == 200 and "Mail me needs in these categories" in page.get_data(
        as_text=True)
    r = web.post("/alerts", data={"categories": ["catering", "plumbing"], "tags": "1"})
    assert r.status_code == 302
    assert pro.get("/api/v1/me/alerts").get_json() == {
        "categories": ["catering", "plumbing"], "direct_asks": False, "tags": True}
    assert app.test_client().get("/alerts").status_code == 302  # signed out: to sign-in
