"""The offer forms on the need page: make (or "take it at your price"), revise, withdraw, and
the customer's accept. Each loads the schema of its API twin and re-renders the need page with
the errors next to their fields (``needs.act``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, request, url_for
from flask_login import current_user, login_required

from marketplace import access, lifecycle
from marketplace.errors import Conflict, DomainError
from marketplace.extensions import limited
from marketplace.money import parse_amount
from marketplace.needs import services as needs
from marketplace.needs.models import Need
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus
from marketplace.offers.schemas import OfferAcceptSchema, OfferInSchema, OfferPatchSchema
from marketplace.schemas import Schema
from marketplace.web import confirm, forms
from marketplace.web.filters import money
from marketplace.web.forms import FormErrors, local_datetime, safe_next
from marketplace.web.i18n import viewer_locale
from marketplace.web.needs import act

bp = Blueprint("offers", __name__)

OFFER_ALIASES = {"price.amount": "price", "price.currency": "price"}


def _offer_form(schema: Schema, form: Any, need: Need, take: bool = False) -> dict[str, Any]:
    """An offer form (make or revise) -> the API's payload, loaded with ``schema``."""
    refused: FormErrors = {}
    payload: dict[str, Any] = {}
    if "message" in form:
        payload["message"] = form["message"]
    if not take:
        try:
            payload["price"] = {"amount": parse_amount(form.get("price", ""), need.budget_currency,
                                                       viewer_locale()),
                                "currency": need.budget_currency}
        except ValueError as exc:
            refused["price"] = [str(exc)]
    try:
        available = local_datetime(form.get("available_at"), form.get("tz"))
    except ValueError as exc:
        refused["available_at"] = [str(exc)]
    else:
        if available is not None:  # empty: none (a new offer) or unchanged (a revision)
            payload["available_at"] = available.isoformat()
    return forms.load(schema, payload, aliases=OFFER_ALIASES, refused=refused)


def _price(offer: Offer) -> dict[str, Any]:
    return {"amount": offer.price_amount, "currency": offer.price_currency}


def own_offer(offer_id: int) -> Offer:
    """The offer, if the caller is its provider or its need's customer; 404 otherwise."""
    try:
        offer, _role = offers.offer_with_role(current_user, offer_id)
    except DomainError:
        abort(404)
    return offer


@bp.route("/needs/<int:need_id>/offers", methods=["POST"])
@login_required
@limited("RATE_LIMIT_OFFERS")
def make(need_id: int) -> Any:
    need = needs.get(need_id)

    def run() -> None:
        data = _offer_form(OfferInSchema(), request.form, need,
                           take=request.form.get("take") == "1")
        offers.make(current_user, need_id, data)

    return act(need_id, "offer", run, "Offer sent. The customer sees it now.", "#my-offer",
               OFFER_ALIASES)


@bp.route("/offers/<int:offer_id>/revise", methods=["POST"])
@login_required
@limited("RATE_LIMIT_OFFERS")
def revise(offer_id: int) -> Any:
    offer = own_offer(offer_id)

    def run() -> None:
        data = _offer_form(OfferPatchSchema(), request.form, offer.need)
        offers.revise(current_user, offer_id, data)

    return act(offer.need_id, "revise", run, "Offer revised.", "#my-offer", OFFER_ALIASES)


@bp.route("/offers/<int:offer_id>/withdraw", methods=["POST"])
@login_required
def withdraw(offer_id: int) -> Any:
    offer = own_offer(offer_id)
    if confirm.wanted() and offer.provider.user_id == current_user.id:
        return confirm.ask("withdraw", safe_next(url_for("needs.show", need_id=offer.need_id)),
                           price=money(_price(offer)), title=offer.need.title)
    return act(offer.need_id, "withdraw", lambda: offers.withdraw(current_user, offer_id),
               "Offer withdrawn.")


@bp.route("/offers/<int:offer_id>/accept", methods=["POST"])
@login_required
def accept(offer_id: int) -> Any:
    offer = own_offer(offer_id)
    if confirm.wanted() and offer.need.customer_id == current_user.id:
        need, role = access.need_with_role(current_user, offer.need_id)
        others = sum(1 for o in access.visible_offers(current_user, need, role)
                     if o.id != offer.id and o.status == OfferStatus.PENDING)
        return confirm.ask("accept", url_for("needs.show", need_id=offer.need_id),
                           name=offer.provider.display_name, price=money(_price(offer)),
                           others=others)

    def run() -> None:
        # The page carries the revision the customer read: a price changed since is refused.
        # It is a hidden input, so its errors are the form's.
        data = forms.load(OfferAcceptSchema(), {"revision": request.form.get("revision", "")},
                          aliases={"revision": "_form"})
        try:
            lifecycle.accept(current_user, offer_id, data["revision"])
        except Conflict as exc:  # the message says it all; there is no revision field to mark
            raise Conflict(exc.message) from None

    return act(offer.need_id, "accept", run,
               "Offer accepted. The provider now sees your address and contact details.",
               aliases={"revision": "_form"})
