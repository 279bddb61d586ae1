"""What the pages say to people, through the Flask test client: amounts in the reader's locale
(and read as typed), times in their zone, errors in words that say what to do with a summary
linking each field, a confirmation page before what cannot be undone when no script asked,
one reputation, and the share page's link preview."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask_login import login_user
from pages import dom, field_errors, value_of
from sqlalchemy import select

from marketplace.accounts import sessions
from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.money import format_amount, parse_amount
from marketplace.needs.models import Need
from marketplace.offers.models import Offer
from marketplace.web import i18n
from marketplace.web.filters import ago, relative_text, until, when
from marketplace.web.forms import people_words

GOOD = {"title": "Paella for 12", "category": "catering", "budget": "350.50",
        "place_query": "Austin, TX", "radius_km": "20", "expires_in": "48"}


@pytest.mark.parametrize("amount, currency, locale, text", [
    (125000, "USD", "en_US", "$1,250.00"),
    (125000, "EUR", "de_DE", "1.250,00\u00a0€"),
    (125000, "EUR", "en_DE", "1.250,00\u00a0€"),
    (125050, "GBP", "en_GB", "£1,250.50"),
    (1250, "JPY", "en_US", "¥1,250"),      # no minor unit
    (1234, "KWD", "en_US", "KWD1.234"),   # three decimals (ISO 4217), exact
])
def test_amounts_are_written_as_the_locale_writes_them(amount: int, currency: str, locale: str,
                                                      text: str) -> None:
    assert format_amount(amount, currency, locale) == text


@pytest.mark.parametrize("typed, currency, locale, amount", [
    ("$400", "USD", "en_US", 40000), ("400", "USD", "en_US", 40000),
    ("1,250.50", "USD", "en_US", 125050), ("  $ 1,250.5 ", "USD", "en_US", 125050),
    ("400 USD", "USD", "en_US", 40000), ("1.250,50 €", "EUR", "de_DE", 125050),
    ("1.250,50", "EUR", "de_DE", 125050), ("12,5", "EUR", "de_DE", 1250),
    ("12.50", "EUR", "de_DE", 1250),  # a dot-decimal without grouping is taken anywhere
    ("1,250.50", "EUR", "de_DE", 125050),  # as is English grouping
    ("1\u202f250,50 €", "EUR", "fr_FR", 125050), ("1 250,50", "EUR", "fr_FR", 125050),
    ("¥1,250", "JPY", "en_US", 1250),
])
def test_amounts_are_read_as_people_type_them(typed: str, currency: str, locale: str,
                                              amount: int) -> None:
    assert parse_amount(typed, currency, locale) == amount


@pytest.mark.parametrize("typed, currency, message", [
    ("1,25", "USD", "Enter an amount like $400.00 or $1,250.50."),  # ambiguous in English
    ("abc", "USD", "Enter an amount like $400.00 or $1,250.50."),
    ("NaN", "USD", "Enter an amount like $400.00 or $1,250.50."),
    ("4e2", "USD", "Enter an amount like $400.00 or $1,250.50."),
    ("-5", "USD", "Enter an amount above zero."),
    ("0.001", "USD", "USD has 2 decimal places at most."),
    ("12.5", "JPY", "JPY has no decimal places: enter a whole amount."),
    ("9" * 20, "USD", "That amount is too large."),
    ("9" * 5000, "USD", "That amount is too large."),
    ("", "USD", "Enter an amount, for example $400.00."),
])
def test_what_is_not_an_amount_gets_words_saying_what_to_type(typed: str, currency: str,
                                                              message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_amount(typed, currency, "en_US")
    assert str(refused.value) == message


@pytest.mark.parametrize("name, message, words", [
    ("title", "Must be 3-120 characters.", "Give your need a title of 3 to 120 characters."),
    ("title", "Length must be between 10 and 200.",
     "Give your need a title of 10 to 200 characters."),
    ("title", "Missing data for required field.",
     "Give your need a title, like “Catering for 20 people on Saturday”."),
    ("radius_km", "Must be greater than or equal to 1.0 and less than or equal to 100.0.",
     "Choose a distance from 1 to 100 km."),
    ("max_offers", "Must be greater than or equal to 1 and less than or equal to 100.",
     "Choose from 1 to 100 offers, or leave this empty."),
    ("body-7", "Must not be empty; at most 4000 characters.",
     "Write your message (up to 4000 characters)."),
    ("whatever", "Must not be empty; at most 100 characters.",
     "Fill this in (up to 100 characters)."),
    ("whatever", "At most 300 characters.", "Shorten this to 300 characters or fewer."),
    ("whatever", "Not a valid integer.", "Enter a whole number."),
    ("budget", "Must be more than 0.", "Enter a budget above zero."),
    ("category", "Choose a category.", "Choose a category."),  # already people's words
    ("_form", "Not a valid integer.", "Not a valid integer."),  # a hidden input's: as is
])
def test_schema_messages_become_words_saying_what_to_do(name: str, message: str,
                                                        words: str) -> None:
    assert people_words(name, message) == words


def test_a_refused_need_form_has_a_summary_linking_every_field(auth: Any,
                                                               make_user: Any) -> None:
    web = auth.sign_in(make_user())
    r = web.post("/needs/new", data={**GOOD, "title": "x", "budget": "lots", "category": ""})
    page = dom(r)
    summary = page.find("div", cls="error-summary")
    assert summary is not None
    assert (summary.attrs["role"], summary.attrs["tabindex"]) == ("alert", "-1")
    links = {a.attrs["href"]: a.text() for a in summary.find_all("a")}
    assert list(links.items()) == [  # in the form's order
        ("#f-title", "Title: Give your need a title of 3 to 120 characters."),
        ("#f-category", "Category: Choose a category."),
        ("#f-budget", "Budget: Enter an amount like $400.00 or $1,250.50."),
    ]
    for href in links:
        control = page.by_id(href[1:])
        name = href.removeprefix("#f-")
        assert control.attrs["aria-invalid"] == "true"
        assert f"e-{name}" in control.attrs["aria-describedby"].split()
    assert set(field_errors(r)) == {"title", "category", "budget"}
    assert db.session.scalar(select(Need)) is None


def test_the_currency_defaults_from_the_locale_then_from_the_last_need(auth: Any,
                                                                       make_user: Any) -> None:
    person = make_user()
    web = auth.sign_in(person)
    r = web.get("/needs/new", headers={"Accept-Language": "en-GB,en;q=0.8"})
    picker = dom(r).by_id("f-currency")
    options = [o.text() for o in picker.find_all("option")]
    assert options[:5] == ["GBP", "USD", "EUR", "CAD", "AUD"]
    assert len(options) == len(set(options)) > 150  # the rest follow, once each
    assert picker.find("option", selected="").text() == "GBP"
    assert web.post("/needs/new", data={**GOOD, "currency": "CAD"}).status_code == 302
    r = web.get("/needs/new", headers={"Accept-Language": "en-GB"})
    assert dom(r).by_id("f-currency").find("option", selected="").text() == "CAD"


def test_the_browser_tells_the_account_its_zone_and_language(auth: Any, make_user: Any,
                                                             make_need: Any) -> None:
    person = make_user()
    web = auth.sign_in(person)
    need = make_need(person, needed_by=datetime(2031, 6, 14, 23, 30, tzinfo=UTC))
    page = web.get(f"/needs/{need.id}").get_data(as_text=True)
    assert "Sat, Jun 14, 2031, 11:30 PM" in page  # UTC until the browser says otherwise
    r = web.post("/account/viewer", data={"tz": "Mars/Olympus", "locale": "x" * 80})
    assert r.status_code == 422
    assert set(r.get_json()["error"]["fields"]) == {"tz", "locale"}
    r = web.post("/account/viewer", data={"tz": "Europe/Berlin", "locale": "de-DE"})
    assert r.status_code == 200 and r.get_json()["changed"] is True
    user = db.session.get(User, person.user.id)
    db.session.refresh(user)
    assert (user.time_zone, user.locale) == ("Europe/Berlin", "de_DE")
    page = dom(web.get(f"/needs/{need.id}"))
    when = page.find("time", datetime="2031-06-14T23:30:00Z")
    assert when.text() == "Sun, 15 Jun 2031, 01:30"
    assert page.find("span", cls="price").text() == "400,00 $"  # (the DOM text collapses NBSP)


def test_a_request_works_its_reader_out_once_and_again_after_the_browser_tells(
        app: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page asks for the reader's zone and locale for every time and amount it shows: the
    account is read for them once per request, and again once the browser has told it new
    ones (``i18n.remember``), so what follows in that request is written the new way."""
    user = db.session.get(User, make_user().user.id)
    asked: list[str] = []
    read = i18n._from_account
    monkeypatch.setattr(i18n, "_from_account", lambda name: asked.append(name) or read(name))
    moment = datetime(2031, 6, 14, 23, 30, tzinfo=UTC)
    with app.test_request_context("/", headers={"Accept-Language": "en-US"}):
        sessions.start(user, remember=False)
        login_user(user)
        shown = [when(moment), until(moment), ago(moment), when(moment)]
        assert asked == ["time_zone", "locale"]
        assert shown[0] == shown[3] and ">Sat, Jun 14, 2031, 11:30 PM</time>" in shown[0]
        assert i18n.remember(user, "Europe/Berlin", "de-DE")
        assert ">Sun, 15 Jun 2031, 01:30</time>" in when(moment)
        assert 'title="Sunday, 15 June 2031' in ago(moment)
        assert asked == ["time_zone", "locale"] * 2
    with app.app_context(), app.test_request_context("/"):  # a request of its own reads
        # the account again
        sessions.start(user, remember=False)
        login_user(user)
        assert ">Sun, 15 Jun 2031, 01:30</time>" in when(moment)
        assert asked == ["time_zone", "locale"] * 3


def test_relative_times_read_as_people_say_them() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    cases = {timedelta(days=2): "in 2 days", timedelta(minutes=-5): "5 minutes ago",
             timedelta(seconds=-20): "just now", timedelta(seconds=30): "in less than a minute",
             timedelta(hours=1): "in 1 hour", timedelta(days=-40): "1 month ago",
             # Babel's 0.85 threshold, as app.js has it
             timedelta(hours=21): "in 1 day", timedelta(hours=20): "in 20 hours"}
    assert {d: relative_text(now + d, now) for d in cases} == cases


def test_without_a_script_accepting_asks_on_a_page_first(auth: Any, make_user: Any,
                                                         make_need: Any, make_provider: Any,
                                                         make_offer: Any) -> None:
    alice = make_user()
    need = make_need(alice)
    dana, eli, fay = (make_provider(make_user(name=n)) for n in ("Dana", "Eli", "Fay"))
    chosen = make_offer(need, dana, amount=38000)
    for pro in (eli, fay):
        make_offer(need, pro, amount=41000)
    web = auth.sign_in(alice)
    page = dom(web.get(f"/needs/{need.id}"))
    form = page.find("form", action=f"/offers/{chosen.id}/accept")
    question = ("Accept Pro Dana’s offer for $380.00? The other 2 offers will be declined. "
                "Pro Dana will see your address and contact details.")
    assert form.attrs["data-confirm"] == question
    assert form.find("input", name="confirm").attrs["value"] == "ask"
    r = web.post(f"/offers/{chosen.id}/accept", data={"revision": "1", "confirm": "ask"})
    assert r.status_code == 200
    asked = dom(r)
    assert asked.by_id("confirm-question").text() == question
    assert db.session.get(Offer, chosen.id).status.value == "pending"
    again = asked.find("form", action=f"/offers/{chosen.id}/accept")
    assert (value_of(r, "revision"), again.find("input", name="confirm").attrs["value"]) == \
        ("1", "yes")
    r = web.post(f"/offers/{chosen.id}/accept", data={"revision": "1", "confirm": "yes"})
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(Offer, chosen.id).status.value == "accepted"


def test_the_offer_card_and_the_profile_show_one_reputation(auth: Any, make_user: Any,
                                                            make_need: Any, make_provider: Any,
                                                            make_offer: Any) -> None:
    alice = make_user()
    need = make_need(alice)
    pro = make_provider(make_user(name="Nia"))
    offer = make_offer(need, pro)
    card = dom(auth.sign_in(alice).get(f"/needs/{need.id}")).by_id(f"offer-{offer.id}")
    line = card.find("p", cls="rep-line").text()
    assert line == "New no ratings yet"
    assert "score" not in card.find("div", cls="meta").text()
    assert "Offers are ranked by a score of" in card.find("details", cls="rep-why").text()
    profile = dom(auth.client().get(f"/p/{pro.provider.handle}"))
    assert profile.by_id("rep-profile").find("p", cls="rep-line").text() == line


def test_the_share_page_has_a_link_preview(auth: Any, make_user: Any, make_need: Any) -> None:
    need = make_need(make_user(), title="Paella for twelve people")
    r = auth.client().get(f"/s/{need.share_token}")
    page = dom(r)
    meta = {m.attrs.get("property"): m.attrs.get("content") for m in page.find_all("meta")
            if m.attrs.get("property")}
    assert meta["og:title"] == "Paella for twelve people"
    assert meta["og:description"].startswith("$400.00 · Catering")
    assert meta["og:image"].endswith("/static/icons/icon-512.png")
    assert "30.2" not in page.text()  # a place name, never coordinates
