"""JSON routes for the private message thread of an offer."""

from typing import Any

from flask import g

from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.messages import services
from marketplace.messages.presenters import MessageView, present
from marketplace.messages.schemas import MessageInSchema, MessageOutSchema
from marketplace.pagination import PageArgs, page, page_of

blp = Blueprint("messages_api", __name__, url_prefix="/api/v1", description="Messages")


@blp.route("/offers/<int:offer_id>/messages", methods=["GET"])
@auth_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(MessageOutSchema))
def thread(args: dict[str, Any], offer_id: int) -> Any:
    """The thread, newest first (only its two parties can read it). Until the offer is
    accepted, the provider reads the customer's messages with phone numbers, e-mail addresses
    and the customer's other contact details masked; the customer reads them as written."""
    _offer, items, cursor = services.thread(g.user, offer_id, args["cursor"], args["limit"])
    return page(present(items, g.user.id), cursor)


@blp.route("/offers/<int:offer_id>/messages", methods=["POST"])
@auth_required
@blp.limited("RATE_LIMIT_MESSAGES")
@blp.idempotent
@blp.arguments(MessageInSchema)
@blp.response(201, MessageOutSchema)
def send(data: dict[str, Any], offer_id: int) -> Any:
    """Write to the other party."""
    return MessageView(services.send(g.user, offer_id, data["body"]), g.user.id)
