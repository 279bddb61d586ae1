"""Money in the loop is positive: a need's budget and an offer's price are at least one minor
unit (0.01 USD), refused with a message next to the field otherwise — through the API, the
pages (the same schema) and, underneath both, the database's CHECK constraints. A $0 budget
used to be taken, and providers were then offered "Take it at 0.00 USD"; a 0 price would sort
first by price without offering anything."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import error_of, need_data
from pages import field_errors
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from marketplace.extensions import db
from marketplace.needs.models import Need
from marketplace.offers.models import Offer


def count(model: Any) -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize("amount", [0, -1])
def test_the_api_refuses_a_budget_that_is_not_positive(make_user: Any, amount: int) -> None:
    customer = make_user()
    r = customer.post("/api/v1/needs", json=need_data(budget={"amount": amount,
                                                              "currency": "USD"}))
    assert r.status_code == 422, r.get_json()
    assert error_of(r)["fields"] == {"budget": {"amount": ["Must be more than 0."]}}
    assert count(Need) == 0


def test_one_minor_unit_is_a_budget(make_user: Any) -> None:
    r = make_user().post("/api/v1/needs", json=need_data(budget={"amount": 1, "currency": "USD"}))
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["budget"] == {"amount": 1, "currency": "USD"}


def test_the_api_refuses_a_zero_price(make_need: Any, make_provider: Any,
                                      make_offer: Any) -> None:
    need = make_need()
    pro = make_provider()
    zero = {"price": {"amount": 0, "currency": "USD"}}
    r = pro.post(f"/api/v1/needs/{need.id}/offers", json=zero)
    assert r.status_code == 422 and "amount" in error_of(r)["fields"]["price"]
    assert count(Offer) == 0
    offer = make_offer(need, pro, amount=100)
    r = pro.patch(f"/api/v1/offers/{offer.id}", json=zero)
    assert r.status_code == 422 and "amount" in error_of(r)["fields"]["price"]
    with db.engine.connect() as conn:
        assert conn.scalar(select(Offer.price_amount).where(Offer.id == offer.id)) == 100


GOOD_FORM = {"title": "Paella for 12", "description": "", "category": "catering",
             "budget": "350", "currency": "USD", "place_query": "Austin, TX",
             "radius_km": "20", "expires_in": "48"}


@pytest.mark.parametrize("typed, error", [
    ("0", "Enter a budget above zero."), ("0.00", "Enter a budget above zero."),
    ("0.001", "USD has 2 decimal places at most."),
], ids=["0", "0.00", "0.001"])
def test_the_need_form_refuses_a_zero_budget_next_to_the_field(auth: Any, make_user: Any,
                                                               typed: str, error: str) -> None:
    web = auth.sign_in(make_user())
    r = web.post("/needs/new", data={**GOOD_FORM, "budget": typed})
    assert r.status_code == 200
    assert field_errors(r) == {"budget": error}
    assert count(Need) == 0


def test_the_offer_form_refuses_a_zero_price(auth: Any, make_need: Any,
                                             make_provider: Any) -> None:
    need = make_need()
    web = auth.sign_in(make_provider())
    r = web.post(f"/needs/{need.id}/offers", data={"price": "0.00"})
    assert field_errors(r) == {"offer-price": "Enter a price above zero."}
    assert count(Offer) == 0


def test_the_database_refuses_zero_amounts(make_need: Any, make_offer: Any) -> None:
    """The schema is not the only guard: a write that skips it still cannot store a 0."""
    need = make_need()
    offer = make_offer(need)
    for stmt in (update(Need).where(Need.id == need.id).values(budget_amount=0),
                 update(Offer).where(Offer.id == offer.id).values(price_amount=0)):
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(stmt)
