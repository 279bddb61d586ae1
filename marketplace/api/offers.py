"""JSON routes for offers."""

from typing import Any

from flask import g, request

from marketplace import access, lifecycle
from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.api.conditional import (
    check_if_match,
    conditional,
    from_body,
    if_match_revision,
    offer_tag,
    tagged,
)
from marketplace.offers import services
from marketplace.offers.presenters import ordered, present, present_one
from marketplace.offers.schemas import (
    SORTS,
    MyOffersArgs,
    OfferAcceptSchema,
    OfferInSchema,
    OfferListArgs,
    OfferListSchema,
    OfferOutSchema,
    OfferPatchSchema,
)
from marketplace.pagination import offset_page, page, page_of
from marketplace.schemas import EmptySchema

blp = Blueprint("offers_api", __name__, url_prefix="/api/v1", description="Offers")


@blp.route("/needs/<int:need_id>/offers", methods=["POST"])
@auth_required
@blp.limited("RATE_LIMIT_OFFERS")
@blp.idempotent
@blp.arguments(OfferInSchema, required=False)
@blp.response(201, OfferOutSchema)
def make(data: dict[str, Any], need_id: int) -> Any:
    """Offer on a need posted to you. Omit ``price`` to take it at the customer's budget."""
    return services.make_presented(g.user, need_id, data)


@blp.route("/needs/<int:need_id>/offers", methods=["GET"])
@auth_required
@blp.arguments(OfferListArgs, location="query")
@blp.response(200, OfferListSchema)
def list_for_need(args: dict[str, Any], need_id: int) -> Any:
    """All offers (customer) or your own (provider), in the chosen order."""
    _need, role, offers = access.offers_on(g.user, need_id)
    views = ordered(present(offers, for_customer=role == "customer"), args["sort"])
    return {**page(*offset_page(views, args["cursor"], args["limit"])), "sort": args["sort"],
            "sort_explanation": SORTS[args["sort"]]}


@blp.route("/offers", methods=["GET"])
@auth_required
@blp.arguments(MyOffersArgs, location="query")
@blp.response(200, page_of(OfferOutSchema))
def mine(args: dict[str, Any]) -> Any:
    """Your offers as a provider, newest first."""
    items, cursor = services.mine(g.user, args["status"], args["cursor"], args["limit"])
    return page(present(items), cursor)


@blp.route("/offers/<int:offer_id>", methods=["GET"])
@auth_required
@conditional(from_body(offer_tag))
@blp.response(200, OfferOutSchema)
def show(offer_id: int) -> Any:
    """One offer (its provider or the need's customer)."""
    offer, role = services.offer_with_role(g.user, offer_id)
    return present_one(offer, for_customer=role == "customer")


@blp.route("/offers/<int:offer_id>", methods=["PATCH"])
@auth_required
@blp.limited("RATE_LIMIT_OFFERS")
@tagged(from_body(offer_tag))
@blp.arguments(OfferPatchSchema, required=False)
@blp.response(200, OfferOutSchema)
def revise(data: dict[str, Any], offer_id: int) -> Any:
    """Revise your pending offer while the need is open. Send the offer's `ETag` as
    `If-Match` so a change made meanwhile is not overwritten unseen (412)."""
    _check_if_match(offer_id)  # and again under the row lock (services.revise)
    if_match = request.if_match
    named = (None if not request.headers.get("If-Match") or if_match.star_tag
             else if_match.as_set())
    return present_one(services.revise(g.user, offer_id, data, named))


def _check_if_match(offer_id: int) -> None:
    if request.headers.get("If-Match"):
        offer, _role = services.offer_with_role(g.user, offer_id)
        check_if_match(offer_tag(offer))


@blp.route("/offers/<int:offer_id>/withdraw", methods=["POST"])
@auth_required
@blp.arguments(EmptySchema, required=False)
@blp.response(200, OfferOutSchema)
def withdraw(_body: dict[str, Any], offer_id: int) -> Any:
    """Withdraw your pending offer while the need is open."""
    return present_one(services.withdraw(g.user, offer_id))


@blp.route("/offers/<int:offer_id>/accept", methods=["POST"])
@auth_required
@tagged(from_body(offer_tag))
@blp.arguments(OfferAcceptSchema, required=False)
@blp.response(200, OfferOutSchema)
def accept(data: dict[str, Any], offer_id: int) -> Any:
    """Accept an offer on your need; every other pending offer is declined. Send the
    `revision` you saw (or the offer's `ETag` as `If-Match`) so a revision made a moment
    earlier is never accepted unread."""
    _check_if_match(offer_id)
    revision = data.get("revision")
    if revision is None:
        revision = if_match_revision()
    return present_one(lifecycle.accept(g.user, offer_id, revision), for_customer=True)
