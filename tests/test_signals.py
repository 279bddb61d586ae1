"""Signals in a need's words (``signals.parser``): ?intent, #topic, @mention -- what counts,
how tags are normalised, that nothing inside URLs, e-mail addresses or code counts, and that
what is stored comes back through the API."""

from __future__ import annotations

import string
import unicodedata
from typing import Any

import pytest
from conftest import need_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.signals.models import NeedTag
from marketplace.signals.parser import MAX_TAG, normalise, parse, parse_subscription

# --- examples -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "intents", "topics", "mentions"), [
    ("Need a ?RentalCar for the weekend #Travel @anna-b", ["rentalcar"], ["travel"], ["anna-b"]),
    ("?Café and ?cafe and ?CAFÉ", ["cafe"], [], []),
    ("#Straße #STRASSE", [], ["strasse"], []),
    ("Ｆｕｌｌ width ?ｋａｙａｋ", ["kayak"], [], []),
    ("(?kayak) \"#boats\" [@pat]", ["kayak"], ["boats"], ["pat"]),
    ("C# and what?now and a@b and 5#3", [], [], []),
    ("?кофе ?καφές ?कॉफ़ी ?コーヒー ?咖啡",  # final sigma folds to sigma; NFKC splits the nukta
     ["кофе", "καφεσ", unicodedata.normalize("NFKC", "कॉफ़ी"), "コーヒー", "咖啡"], [], []),
    ("?_ and ?- and # and ? alone", [], [], []),
    ("see https://example.com/p?ref=1#top and www.example.com/?x #real", [], ["real"], []),
    ("mail bob@example.com or @anna.", [], [], ["anna"]),
    ("code `?nope #nope` and\n```\n?fenced #fenced\n```\n?yes", ["yes"], [], []),
    ("?" + "a" * MAX_TAG + " ?" + "b" * (MAX_TAG + 1), ["a" * MAX_TAG], [], []),
])
def test_parse_examples(text: str, intents: list[str], topics: list[str],
                        mentions: list[str]) -> None:
    found = parse(text)
    assert (found.intents, found.topics, found.mentions) == (intents, topics, mentions)


def test_accents_are_stripped_only_where_they_are_accents() -> None:
    assert normalise("Café") == normalise("cafe") == "cafe"
    assert normalise("naïve") == "naive"
    # In Devanagari a vowel sign is part of the letter: कि and क are different words.
    assert normalise("कि") != normalise("क")


def test_subscriptions_are_exactly_one_intent_or_topic() -> None:
    assert parse_subscription(" ?Kayak ") == ("intent", "kayak")
    assert parse_subscription("#Boats") == ("topic", "boats")
    for wrong in ("kayak", "@anna", "?a ?b", "?kay ak", "?kay.ak", "", "?", "#é!"):
        assert parse_subscription(wrong) is None, wrong


# --- properties -----------------------------------------------------------------------------

TAG_ALPHABET = st.characters(categories=("L", "M", "Nd"), exclude_characters="\u0345")
# Words that stay words under NFKC ("Ŀ" becomes "L·", whose "·" ends a tag).
words = st.text(TAG_ALPHABET, min_size=1, max_size=12).filter(lambda t: all(
    unicodedata.category(c)[0] in "LM" or unicodedata.category(c) == "Nd"
    for c in unicodedata.normalize("NFKC", t)))
prose = st.text(st.characters(categories=("L", "N", "Zs", "P", "S")), max_size=40)
url_text = st.text(string.ascii_letters + string.digits + "?#@&=/._-~%+", max_size=30)


@st.composite
def urls(draw: Any) -> str:
    scheme = draw(st.sampled_from(["https://", "http://", "ftp://", "www."]))
    host = draw(st.text(string.ascii_lowercase, min_size=1, max_size=10)) + ".example"
    return scheme + host + "/" + draw(url_text)


@st.composite
def emails(draw: Any) -> str:
    local = draw(st.text(string.ascii_letters + string.digits + "._+#?-", min_size=1,
                         max_size=12))
    return local + "@" + draw(st.text(string.ascii_lowercase, min_size=1, max_size=8)) + ".org"


@settings(max_examples=200, deadline=None, database=None)
@given(tag=words)
def test_normalise_is_idempotent(tag: str) -> None:
    once = normalise(tag)
    assert normalise(once) == once
    assert unicodedata.is_normalized("NFKC", once)
    assert once == once.casefold() or normalise(once.casefold()) == once


@settings(max_examples=200, deadline=None, database=None)
@given(tag=words)
def test_case_and_width_never_make_another_tag(tag: str) -> None:
    # (upper() is not case folding's inverse: "ı".upper() is "I", whose fold is "i".)
    assert normalise(tag.casefold()) == normalise(tag)
    assert normalise(unicodedata.normalize("NFKD", tag)) == normalise(tag)
    latin = "".join(ch for ch in tag if ch in string.ascii_letters) or "a"
    wide = "".join(chr(ord(ch) + 0xFEE0) for ch in latin)  # full-width forms
    assert normalise(latin.upper()) == normalise(latin.lower()) == normalise(wide)


@settings(max_examples=200, deadline=None, database=None)
@given(before=prose, inside=st.one_of(urls(), emails()), after=prose)
def test_nothing_inside_a_url_or_email_is_a_signal(before: str, inside: str, after: str) -> None:
    assert parse(inside).pairs() == []
    # Embedded between spaces, it adds nothing to what the rest of the text says.
    assert parse(f"{before} {inside} {after}").pairs() == parse(f"{before} {after}").pairs()


@settings(max_examples=200, deadline=None, database=None)
@given(code=st.text(max_size=30).filter(lambda t: "`" not in t), before=prose, after=prose)
def test_nothing_inside_code_is_a_signal(code: str, before: str, after: str) -> None:
    assert (parse(f"{before} `{code}` {after}").pairs()
            == parse(f"{before} {' ' * len(code)} {after}").pairs())


@settings(max_examples=200, deadline=None, database=None)
@given(tags=st.lists(words, min_size=1, max_size=5), sigil=st.sampled_from("?#"))
def test_every_written_tag_is_found_normalised_in_order(tags: list[str], sigil: str) -> None:
    text = " ".join(sigil + t for t in tags)
    found = parse(text)
    expected = list(dict.fromkeys(n for t in tags if (n := normalise(t)) and len(n) <= MAX_TAG
                                  and unicodedata.category(unicodedata.normalize(
                                      "NFKC", t)[0])[0] in "LN"))
    assert (found.intents if sigil == "?" else found.topics) == expected


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(max_size=80))
def test_every_found_tag_is_normalised_and_short(text: str) -> None:
    for _kind, tag in parse(text).pairs():
        assert tag and normalise(tag) == tag and len(tag) <= MAX_TAG


# --- stored and returned ----------------------------------------------------------------------


def test_a_need_stores_its_signals_and_the_api_returns_them(make_user: Any) -> None:
    customer = make_user()
    r = customer.post("/api/v1/needs", json=need_data(
        title="Weekend ?RentalCar #Travel", description="For @nobody-here, also ?Café ?rentalcar"))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert (body["intents"], body["topics"], body["mentions"]) == (
        ["rentalcar", "cafe"], ["travel"], ["nobody-here"])
    again = customer.get(f"/api/v1/needs/{body['id']}").get_json()
    assert (again["intents"], again["topics"], again["mentions"]) == (
        ["rentalcar", "cafe"], ["travel"], ["nobody-here"])
    from marketplace.extensions import db
    rows = db.session.query(NeedTag).filter_by(need_id=body["id"]).order_by(NeedTag.position)
    assert [(t.kind, t.tag) for t in rows] == [("intent", "rentalcar"), ("intent", "cafe"),
                                              ("topic", "travel"), ("mention", "nobody-here")]


def test_a_tag_that_is_a_phone_number_is_masked_for_providers(make_user: Any,
                                                              make_provider: Any) -> None:
    customer = make_user()
    pro = make_provider()
    r = customer.post("/api/v1/needs", json=need_data(
        title="Call me", description="?5125550101 ?kayak"))
    need = r.get_json()
    assert need["intents"] == ["5125550101", "kayak"]
    seen = pro.get(f"/api/v1/needs/{need['id']}").get_json()
    assert seen["intents"] == ["kayak"]


@pytest.mark.hypothesis
@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tags=st.lists(words, min_size=1, max_size=4), topic=words)
def test_signals_round_trip_through_the_api(make_user: Any, tags: list[str], topic: str) -> None:
    customer = make_user()
    title = "Need " + " ".join("?" + t for t in tags)
    r = customer.post("/api/v1/needs", json=need_data(title=title[:120],
                                                      description=f"about #{topic}"))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    expected = parse(title[:120], f"about #{topic}")
    assert (body["intents"], body["topics"], body["mentions"]) == (
        expected.intents, expected.topics, expected.mentions)
