"""Contact only on acceptance, tried the way a provider would try it: a need whose customer has
a full name, an e-mail, a phone, an exact point and an address — and who typed their phone and
e-mail into the title, the description and their messages — and every response and event a
provider who was not chosen can get (API, pages, share page, the Socket.IO frames emitted
live and the notifications a reconnection replays; real socket clients of a live server in
test_contact_privacy_live.py). None of them carries any of it; after acceptance exactly the accepted
provider's do, and the others' still don't."""

from __future__ import annotations

import json
import re
from typing import Any

import phonenumbers
import pytest
from conftest import AUSTIN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace import contact, lifecycle
from marketplace.extensions import db
from marketplace.messages import services as messages
from marketplace.notifications import outbox
from marketplace.notifications import services as notifications

POINT = (30.2712345, -97.7398765)
NAME, FIRST = "Cora Quintessa Marlowe", "Cora"
EMAIL = "cora.marlowe@example.org"
PHONE = "+1 512 555 0147"
ADDRESS = "742 Evergreen Terrace"
TITLE = "Catering for 20, call 512-555-0147"
DESCRIPTION = ("Text me at (512) 555-0147 or mail cora.marlowe@example.org — "
               "I'm Cora Quintessa Marlowe, 742 Evergreen Terrace, ring twice.")
MESSAGE = "My cell is 512.555.0147, or write to cora dot marlowe at example dot org"

# Every way the secrets could show: as typed, in other formats, in parts.
SECRETS = ("30.2712345", "-97.7398765", "30.27123", "97.73987", "Evergreen", "742 ",
           "Marlowe", "Quintessa", "cora.marlowe", "cora dot marlowe", "example.org",
           "example dot org", "5125550147", "512-555-0147", "(512) 555", "512.555", "555-0147",
           "555 0147", "555.0147", "+15125550147", "+1 512")


def leaks(text: str) -> list[str]:
    """The secrets found in ``text`` (JSON escapes undone; the phone's digits with anything
    between them)."""
    text = json.loads(json.dumps(text))
    found = [s for s in SECRETS if s.lower() in text.lower()]
    if "5125550147" in re.sub(r"\D", "", text) or re.search(r"555\D{0,3}0\D{0,3}147", text):
        found.append("phone digits")
    return found


@pytest.fixture
def live_frames(app):
    """user id -> the JSON text of every notification emitted live to them (the frame's
    argument as Socket.IO sends it)."""
    frames: dict[int, list[str]] = {}

    def record(events: list[tuple[int, dict[str, Any]]]) -> None:
        for user_id, event in events:
            frames.setdefault(user_id, []).append(getattr(event, "wire", "") or json.dumps(event))

    outbox.on_emit(record)
    yield frames
    outbox._emitters.remove(record)


@pytest.fixture
def world(app, make_user, make_provider, make_need, make_offer, auth, live_frames):
    """Providers alice (to be accepted), bob (offers too) and carol (matched, no offer); the
    need, the offers and the customer's messages."""
    customer = make_user(name=NAME, email=EMAIL, phone=PHONE)
    pros = {name: make_provider(make_user(name=f"{name.title()} Pro"), base=AUSTIN)
            for name in ("alice", "bob", "carol")}
    need = make_need(customer, title=TITLE, description=DESCRIPTION,
                     location={"lat": POINT[0], "lon": POINT[1]}, address=ADDRESS, place=ADDRESS)
    offers = {name: make_offer(need, pros[name]) for name in ("alice", "bob")}
    for offer in offers.values():
        messages.send(customer.user, offer.id, MESSAGE)
    return {"customer": customer, "pros": pros, "frames": live_frames, "need": need,
            "offers": offers, "auth": auth}


def everything(world: dict[str, Any], name: str) -> dict[str, str]:
    """Every response and event provider ``name`` can get about the need, as text."""
    pro, need = world["pros"][name], world["need"]
    offer = world["offers"].get(name)
    api = {
        "GET need": f"/api/v1/needs/{need.id}",
        "feed": "/api/v1/feed",
        "offers on the need": f"/api/v1/needs/{need.id}/offers",
        "my offers": "/api/v1/offers",
        "notifications": "/api/v1/notifications?after=0&limit=500",
    }
    if offer is not None:
        api |= {"offer": f"/api/v1/offers/{offer.id}",
                "messages": f"/api/v1/offers/{offer.id}/messages"}
    got = {label: pro.get(url).get_data(as_text=True) for label, url in api.items()}
    browser = world["auth"].sign_in(pro)
    for label, url in {"need page": f"/needs/{need.id}", "feed page": "/feed",
                       "jobs page": "/jobs", "notifications page": "/notifications",
                       "share page": f"/s/{need.share_token}"}.items():
        got[label] = browser.get(url).get_data(as_text=True)
    got["socket, live"] = "\n".join(world["frames"].get(pro.user.id, []))
    # what a reconnection with last_id=0 replays: each stored row's as_event()
    got["socket, replayed"] = json.dumps(
        [n.as_event() for n in notifications.after(pro.user.id, 0, 500)])
    return got


def assert_clean(got: dict[str, str]) -> None:
    found = {label: leaks(text) for label, text in got.items()}
    assert {label: f for label, f in found.items() if f} == {}


def test_before_acceptance_no_provider_gets_any_contact_detail(world):
    for name in ("alice", "bob", "carol"):
        got = everything(world, name)
        assert_clean(got)
        # ... and the test reads real content: the masked need and thread are there
        assert "[phone hidden until you accept]" in got["GET need"]
        assert "[email hidden until you accept]" in got["feed"]
        assert "[phone hidden until you accept]" in got["socket, live"]
        assert "[phone hidden until you accept]" in got["share page"]
        if name != "carol":
            assert "[phone hidden until you accept]" in got["messages"]
            assert "[email hidden until you accept]" in got["notifications"]
            assert "[email hidden until you accept]" in got["need page"]
    body = world["pros"]["carol"].get(f"/api/v1/needs/{world['need'].id}").get_json()
    assert body["title"] == "Catering for 20, call [phone hidden until you accept]"
    assert body["description"] == (
        "Text me at [phone hidden until you accept] or mail [email hidden until you accept] — "
        "I'm Cora, [address hidden until you accept], ring twice.")
    assert body["place"] == "Austin, TX, US"  # the geocoder's name of the cell, not as typed


def test_the_customer_reads_their_own_words_as_written(world):
    customer, need, offer = world["customer"], world["need"], world["offers"]["bob"]
    body = customer.get(f"/api/v1/needs/{need.id}").get_json()
    assert (body["title"], body["description"]) == (TITLE, DESCRIPTION)
    thread = customer.get(f"/api/v1/offers/{offer.id}/messages").get_json()
    assert [m["body"] for m in thread["items"]] == [MESSAGE]
    page = world["auth"].sign_in(customer).get(f"/needs/{need.id}").get_data(as_text=True)
    assert "512.555.0147" in page and "(512) 555-0147" in page


def test_after_acceptance_exactly_the_accepted_provider_gets_the_contact(world):
    customer = world["customer"]
    lifecycle.accept(customer.user, world["offers"]["alice"].id)
    db.session.expire_all()
    alice = everything(world, "alice")
    body = json.loads(alice["GET need"])
    assert body["customer"] == {"name": NAME, "email": EMAIL, "phone": PHONE, "avatar": None}
    assert body["address"] == ADDRESS
    assert (body["location"]["lat"], body["location"]["lon"]) == POINT
    assert (body["title"], body["description"]) == (TITLE, DESCRIPTION)
    assert MESSAGE in alice["messages"] and MESSAGE in alice["need page"]
    assert ADDRESS in alice["jobs page"] and NAME in alice["need page"]
    for name in ("bob", "carol"):
        assert_clean(everything(world, name))


def test_messages_after_acceptance_reach_the_accepted_provider_unmasked_only(world):
    customer = world["customer"]
    lifecycle.accept(customer.user, world["offers"]["alice"].id)
    messages.send(customer.user, world["offers"]["alice"].id, "Gate code 4471, call 512-555-0147")
    [note] = [n for n in notifications.after(world["pros"]["alice"].user.id, 0, 500)
              if n.type == "message.received" and "Gate code" in n.data["body"]]
    assert note.data["body"] == "Gate code 4471, call 512-555-0147"
    assert "512-555-0147" in note.text


# --- the masking rule itself -------------------------------------------------------------

US_FORMATS = (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
              phonenumbers.PhoneNumberFormat.NATIONAL)
REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "AU", "JP", "MX", "NG", "IR", "TK")
def words(text: str) -> list[str]:
    """The filler's words, outside the masks' own."""
    for hidden in (contact.PHONE_HIDDEN, contact.EMAIL_HIDDEN):
        text = text.replace(hidden, " ")
    return re.findall(r"[a-p]+", text)


filler = st.text(st.sampled_from("abcdefghij klmnop,;:!?()-—'\"\n"), max_size=30)


@st.composite
def us_numbers(draw: Any) -> tuple[str, str]:
    """A US number (NANP shape: area and exchange codes 2-9xx) in a format people type; and
    its ten digits."""
    digits = (f"{draw(st.integers(2, 9))}{draw(st.integers(0, 99)):02d}"
              f"{draw(st.integers(2, 9))}{draw(st.integers(0, 99)):02d}"
              f"{draw(st.integers(0, 9999)):04d}")
    a, b, c = digits[:3], digits[3:6], digits[6:]
    typed = draw(st.sampled_from([
        f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}", digits,
        f"+1{digits}", f"+1 {a} {b} {c}", f"1-{a}-{b}-{c}", f"+1 ({a}) {b}-{c}",
        f"{a}/{b}-{c}"]))
    return typed, digits


@st.composite
def world_numbers(draw: Any) -> tuple[str, str]:
    """Another country's example number, written internationally; and its national digits."""
    region = draw(st.sampled_from(REGIONS))
    number = phonenumbers.example_number_for_type(
        region, draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE,
                                      phonenumbers.PhoneNumberType.FIXED_LINE])))
    typed = phonenumbers.format_number(number, draw(st.sampled_from(US_FORMATS[:2])))
    return typed, str(number.national_number)


emails = st.builds(
    lambda local, host, tld, spelt: (f"{local} at {host} dot {tld}" if spelt
                                     else f"{local}@{host}.{tld}"),
    st.from_regex(r"[a-z][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,15}[a-z0-9]", fullmatch=True),
    st.sampled_from(["com", "org", "co.uk", "io", "de"]), st.booleans())


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(before=filler, after=filler, number=st.one_of(us_numbers(), world_numbers()))
def test_a_phone_number_in_any_common_format_is_masked(before, after, number):
    typed, digits = number
    shown = contact.mask(f"{before} {typed} {after}", ("US",))
    assert digits not in re.sub(r"\D", "", shown)
    assert contact.PHONE_HIDDEN in shown
    assert words(shown) == words(before) + words(after)  # only the number went


@settings(max_examples=150)
@given(before=filler, after=filler, email=emails)
def test_an_email_address_is_masked(before, after, email):
    shown = contact.mask(f"{before} {email} {after}")
    assert email not in shown and contact.EMAIL_HIDDEN in shown
    assert words(shown) == words(before) + words(after)


@settings(max_examples=100)
@given(text=st.text(st.sampled_from("abcdefghijklmnop ,.;!?\n"), max_size=200))
def test_text_with_no_contact_detail_is_left_as_it_is(text):
    assert contact.mask(text) == text


def test_the_matchers_digit_cut_off_is_below_every_number_it_could_find():
    """Text with fewer digits than ``min_digits`` skips the matcher: true only while no number
    in libphonenumber's metadata, written internationally, is shorter than MIN_PHONE_DIGITS,
    and national formats of the configured regions count their own shortest."""
    metas = [phonenumbers.PhoneMetadata.metadata_for_region(r)
             for r in phonenumbers.SUPPORTED_REGIONS]
    assert min(min(n for n in m.general_desc.possible_length if n > 0) + len(str(m.country_code))
               for m in metas) >= contact.MIN_PHONE_DIGITS
    assert contact.min_digits(("AL",)) == 5  # Albania's local-only numbers
    assert contact.mask("Ring 12 345", ("AL",)) == "Ring [phone hidden until you accept]"
    assert contact.min_digits(("US",)) == contact.MIN_PHONE_DIGITS


@pytest.mark.parametrize("text", [
    "Budget about $400 for 20 people on 2026-12-05 at 10:30",
    "We are at noon. Then dessert.", "Meet at the park, 3 pm", "Room 12, floor 3"])
def test_ordinary_need_text_is_not_mistaken_for_contact(text):
    assert contact.mask(text) == text


def test_masking_takes_linear_time_on_hostile_text():
    """No pattern backtracks over the whole text: 5000 characters of near-misses are cheap."""
    import time

    for hostile in ("a" * 5000, "a." * 2500, "1-" * 2500, "x" * 4990 + "@" + "y" * 9,
                    "a at " * 1000):
        started = time.perf_counter()
        contact.mask(hostile)
        assert time.perf_counter() - started < 1.0


def test_a_cancel_reason_reaches_the_offering_providers_masked(world):
    customer, need = world["customer"], world["need"]
    lifecycle.cancel(customer.user, need.id, "Found someone; call me on 512-555-0147 anyway")
    db.session.expire_all()
    for name in ("alice", "bob"):
        got = everything(world, name)
        assert_clean(got)
        assert json.loads(got["GET need"])["cancel_reason"] == (
            "Found someone; call me on [phone hidden until you accept] anyway")
        [note] = [n for n in notifications.after(world["pros"][name].user.id, 0, 500)
                  if n.type == "need.cancelled"]
        assert "[phone hidden until you accept]" in note.data["reason"] and note.text.endswith("anyway”")
    assert customer.get(f"/api/v1/needs/{need.id}").get_json()["cancel_reason"] == (
        "Found someone; call me on 512-555-0147 anyway")


def test_the_accepted_provider_gets_the_contact_for_that_need_only(world, make_need, make_offer,
                                                                   live_frames):
    """Accepted on one need, alice is still an unchosen provider on the customer's next one:
    everything she gets about it is as clean as before."""
    customer, alice = world["customer"], world["pros"]["alice"]
    lifecycle.accept(customer.user, world["offers"]["alice"].id)
    second = make_need(customer, title=TITLE, description=DESCRIPTION,
                       location={"lat": POINT[0], "lon": POINT[1]}, address=ADDRESS)
    offer = make_offer(second, alice)
    messages.send(customer.user, offer.id, MESSAGE)
    live_frames.clear()  # what she was sent about the first need is hers to read
    db.session.expire_all()
    got = everything({**world, "need": second, "offers": {"alice": offer}}, "alice")
    # the first need's rows are in her notifications and on her jobs page; leave those out
    about_second = {label: text for label, text in got.items()
                    if label not in ("notifications", "notifications page", "socket, replayed",
                                     "jobs page", "my offers")}
    assert_clean(about_second)
    notes = [n.as_event() for n in notifications.after(alice.user.id, 0, 500)
             if (n.data.get("need") or {}).get("id") == second.id
             or n.data.get("need_id") == second.id]
    assert notes and leaks(json.dumps(notes)) == []
    assert "[phone hidden until you accept]" in got["messages"]
