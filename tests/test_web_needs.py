"""Customer pages through the Flask test client: forms, errors next to fields, who sees what."""

from __future__ import annotations

from typing import Any

from conftest import AUSTIN
from pages import dom, field_error, field_errors, messages_shown, value_of
from sqlalchemy import func, select

from marketplace.extensions import db
from marketplace.needs.models import Need
from marketplace.offers.models import Offer
from marketplace.ratings.models import Rating

GOOD = {"title": "Paella for 12", "description": "Seafood", "category": "catering",
        "budget": "350.50", "currency": "USD", "place_query": "Austin, TX", "radius_km": "20",
        "expires_in": "48", "address": "12 Rainey St"}


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_pages_need_a_signed_in_user(client: Any) -> None:
    for path in ("/needs/new", "/needs", "/needs/1", "/notifications"):
        r = client.get(path)
        assert r.status_code == 302 and "/signin" in r.headers["Location"]


def test_posting_a_need_with_a_place_name(make_user: Any, auth: Any) -> None:
    alice = make_user()
    web = auth.sign_in(alice)
    r = web.post("/needs/new", data=GOOD)
    assert r.status_code == 302
    need = db.session.scalar(select(Need))
    assert r.headers["Location"].endswith(f"/needs/{need.id}")
    assert need.budget_amount == 35050 and need.budget_currency == "USD"
    assert abs(need.lat - AUSTIN[0]) < 0.01 and need.place == "Austin, TX, US"
    page = web.get(f"/needs/{need.id}").get_data(as_text=True)
    assert "Paella for 12" in page and "$350.50" in page and f"/s/{need.share_token}" in page


def test_every_bad_field_is_reported_next_to_it_and_nothing_is_saved(
        make_user: Any, auth: Any) -> None:
    web = auth.sign_in(make_user())
    r = web.post("/needs/new", data={**GOOD, "title": "x", "category": "", "budget": "12.345",
                                     "place_query": "", "radius_km": "500", "expires_in": "9"})
    assert r.status_code == 200
    errors = field_errors(r)
    assert set(errors) == {"title", "category", "budget", "place_query", "radius_km",
                           "expires_in"}
    assert "decimal places" in errors["budget"]
    assert field_error(r, "title") == errors["title"]  # announced at its input
    assert count(Need) == 0
    r = web.post("/needs/new", data={**GOOD, "place_query": "Nowhereville Zzyzx"})
    assert "No place called" in field_errors(r)["place_query"]
    r = web.post("/needs/new", data={**GOOD, "place_query": "", "lat": "95", "lon": "-97.7"})
    assert field_errors(r) == {
        "lat": "Latitude runs from -90 to 90: check the number, or type a place instead."}
    assert count(Need) == 0


def test_reach_preview_counts_matching_providers(make_user: Any, make_provider: Any,
                                                 auth: Any) -> None:
    make_provider()
    make_provider(categories=("plumbing",))
    make_provider(base=(32.78, -96.80))
    web = auth.sign_in(make_user())
    r = web.get("/needs/reach", query_string={"category": "catering", "lat": AUSTIN[0],
                                              "lon": AUSTIN[1], "radius_km": 20})
    assert r.get_json() == {"count": 1, "place": None, "found": None}
    r = web.get("/needs/reach", query_string={"category": "catering", "radius_km": 20,
                                              "place_query": "Austin, TX"})
    assert r.get_json()["count"] == 1 and r.get_json()["place"] == "Austin, TX, US"
    assert r.get_json()["found"] == {"lat": 30.26715, "lon": -97.74306}  # for the form's map
    r = web.get("/needs/reach", query_string={"category": "nope", "lat": 1, "lon": 1,
                                              "radius_km": 5})
    assert r.get_json()["count"] is None and "Unknown category" in r.get_json()["message"]


def test_offer_accept_message_complete_rate_through_the_pages(
        make_user: Any, make_provider: Any, make_need: Any, auth: Any) -> None:
    alice = make_user(name="Alice Smith", phone="+1 555 0100")
    need = make_need(alice)
    pro = make_provider()
    other = make_provider()
    me, them, rival = auth.sign_in(alice), auth.sign_in(pro), auth.sign_in(other)
    page = them.get(f"/needs/{need.id}").get_data(as_text=True)
    assert "Take it at $400.00" in page
    assert "100 Congress Ave" not in page and alice.user.email not in page
    r = them.post(f"/needs/{need.id}/offers", data={"price": "abc"})
    assert field_errors(r) == {"offer-price": "Enter an amount like $400.00 or $1,250.50."}
    assert count(Offer) == 0
    assert them.post(f"/needs/{need.id}/offers", data={"take": "1"}).status_code == 302
    assert rival.post(f"/needs/{need.id}/offers",
                      data={"price": "380", "message": "Cheaper"}).status_code == 302
    mine = db.session.scalar(select(Offer).where(Offer.provider_id == pro.provider.id))
    assert mine.price_amount == 40000
    page = me.get(f"/needs/{need.id}?sort=price").get_data(as_text=True)
    assert page.index("Cheaper") < page.index(f"Pro {pro.user.name}")
    r = me.post(f"/offers/{mine.id}/messages", data={"body": "   "})
    assert field_errors(r) == {f"body-{mine.id}": "Write your message (up to 4000 characters)."}
    assert me.post(f"/offers/{mine.id}/messages", data={"body": "Vegan?"}).status_code == 302
    assert "Vegan?" in them.get(f"/needs/{need.id}").get_data(as_text=True)
    assert them.post(f"/offers/{mine.id}/accept").status_code == 200  # refused, shown
    assert db.session.get(Need, need.id).status.value == "open"
    assert me.post(f"/offers/{mine.id}/accept").status_code == 302
    page = them.get(f"/needs/{need.id}").get_data(as_text=True)
    assert "100 Congress Ave, Austin" in page and alice.user.email in page and "+1 555 0100" in page
    rival_page = rival.get(f"/needs/{need.id}").get_data(as_text=True)
    assert "100 Congress Ave" not in rival_page and "declined" in rival_page
    r = me.post(f"/needs/{need.id}/rate", data={"stars": "5"})
    assert "only a completed job" in r.get_data(as_text=True)
    assert me.post(f"/needs/{need.id}/complete").status_code == 302
    r = me.post(f"/needs/{need.id}/rate", data={"stars": "7"})
    assert field_errors(r) == {"rate-stars": "Choose from 1 to 5 stars."} and count(Rating) == 0
    r = me.post(f"/needs/{need.id}/rate", data={"stars": "4", "quality": "5",
                                               "comment": "Lovely"})
    assert r.status_code == 302
    rating = db.session.scalar(select(Rating))
    assert (rating.stars, rating.quality, rating.comment) == (4, 5, "Lovely")


def test_cancelling_an_assigned_job_needs_a_reason(make_user: Any, make_need: Any,
                                                  make_offer: Any, auth: Any) -> None:
    alice = make_user()
    need = make_need(alice)
    offer = make_offer(need)
    web = auth.sign_in(alice)
    web.post(f"/offers/{offer.id}/accept")
    r = web.post(f"/needs/{need.id}/cancel", data={"reason": ""})
    assert field_errors(r) == {"cancel-reason": "Required when cancelling an assigned job."}
    assert db.session.get(Need, need.id).status.value == "assigned"
    assert web.post(f"/needs/{need.id}/cancel", data={"reason": "Moved"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Need, need.id).cancel_reason == "Moved"


def test_strangers_and_unmatched_providers_get_404(make_user: Any, make_provider: Any,
                                                   make_need: Any, auth: Any) -> None:
    need = make_need()
    far = make_provider(base=(32.78, -96.80))
    assert auth.sign_in(make_user()).get(f"/needs/{need.id}").status_code == 404
    assert auth.sign_in(far).get(f"/needs/{need.id}").status_code == 404
    assert auth.sign_in(far).post(f"/needs/{need.id}/offers", data={"take": "1"}).status_code \
        == 404
    assert count(Offer) == 0


def test_my_needs_lists_only_mine_with_counts(make_user: Any, make_need: Any, make_offer: Any,
                                              auth: Any) -> None:
    alice, bob = make_user(), make_user()
    mine = make_need(alice, title="Alice's party")
    make_need(bob, title="Bob's sink")
    make_offer(mine)
    page = dom(auth.sign_in(alice).get("/needs"))
    assert "Alice's party" in page.text() and "Bob" not in page.text()
    assert page.find(data_offer_count=str(mine.id)).text() == "1"


def test_share_page_shows_no_address_or_contact(client: Any, make_user: Any,
                                                make_need: Any) -> None:
    alice = make_user(phone="+1 555 0199")
    need = make_need(alice)
    page = client.get(f"/s/{need.share_token}").get_data(as_text=True)
    assert need.title in page and "Sign up to make an offer" in page
    assert "100 Congress" not in page and alice.user.email not in page and "0199" not in page
    assert f"{need.lat:.4f}" not in page
    assert client.get("/s/not-a-token").status_code == 404


def test_accepting_a_page_whose_offer_was_revised_since_is_refused_with_the_new_price(
        make_user: Any, make_provider: Any, make_need: Any, make_offer: Any,
        auth: Any) -> None:
    alice = make_user()
    need = make_need(alice)
    pro = make_provider()
    offer = make_offer(need, pro, amount=30000)
    me = auth.sign_in(alice)
    seen = value_of(me.get(f"/needs/{need.id}"), "revision")
    assert seen == "1"
    assert auth.sign_in(pro).post(f"/offers/{offer.id}/revise",
                                 data={"price": "450", "message": "Busy week"}).status_code == 302

    r = me.post(f"/offers/{offer.id}/accept", data={"revision": seen})
    assert r.status_code == 200
    alert = messages_shown(r)["form-error"]
    assert "revised this offer" in alert and "450.00 USD" in alert
    assert need_status(need.id) == ("open", None)
    assert value_of(r, "revision") == "2"  # the page shows the new terms
    for tampered, says in (("x", "integer"), ("0", "greater than or equal to 1")):
        r = me.post(f"/offers/{offer.id}/accept", data={"revision": tampered})
        alert = messages_shown(r).get("form-error", "")
        assert says in alert, (tampered, alert)
        assert need_status(need.id) == ("open", None)
    assert me.post(f"/offers/{offer.id}/accept", data={"revision": "2"}).status_code == 302
    assert need_status(need.id) == ("assigned", offer.id)


def need_status(need_id: int) -> tuple[str, int | None]:
    """The need's status and accepted offer as committed (not the session's cached copy)."""
    row = db.session.execute(select(Need.status, Need.accepted_offer_id)
                             .where(Need.id == need_id)
                             .execution_options(populate_existing=True)).one()
    db.session.rollback()
    return row[0].value, row[1]


def test_missing_values_are_asked_for_in_a_persons_words(make_user: Any, make_need: Any,
                                                        make_offer: Any, auth: Any) -> None:
    """No star picked is "Choose from 1 to 5 stars." next to the stars, not marshmallow's
    "Field may not be null."; the need form's radius likewise."""
    alice = make_user()
    need = make_need(alice)
    offer = make_offer(need)
    me = auth.sign_in(alice)
    me.post(f"/offers/{offer.id}/accept")
    me.post(f"/needs/{need.id}/complete")
    for form in ({}, {"stars": ""}, {"stars": "0"}, {"comment": "Nice"}):
        r = me.post(f"/needs/{need.id}/rate", data=form)
        assert r.status_code == 200
        assert field_errors(r).get("rate-stars") == "Choose from 1 to 5 stars.", form
    assert count(Rating) == 0
    r = me.post("/needs/new", data={**GOOD, "radius_km": ""})
    assert field_errors(r)["radius_km"] == "Say how far a provider may come, 1-100 km."
