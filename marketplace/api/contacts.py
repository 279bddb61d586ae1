"""JSON routes: my providers — the customer's private record of the providers they dealt
with. Blocking stays in ``blocks`` (``/me/blocks``); here ``blocked`` is only read."""

from typing import Any

from flask import g

from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.contacts import services
from marketplace.contacts.schemas import (
    MyProviderInSchema,
    MyProviderListArgs,
    MyProviderOutSchema,
)
from marketplace.pagination import page, page_of

blp = Blueprint("contacts_api", __name__, url_prefix="/api/v1",
                description="My providers (private notes, favourites)")


@blp.route("/me/providers", methods=["GET"])
@auth_required
@blp.arguments(MyProviderListArgs, location="query")
@blp.response(200, page_of(MyProviderOutSchema))
def list_mine(args: dict[str, Any]) -> Any:
    """Every provider who made an offer on one of your needs, most recently dealt with first,
    with your private note, "would hire again", favourite, and whether you blocked them."""
    return page(*services.list_mine(g.user, args["cursor"], args["limit"], args["favourites"]))


@blp.route("/me/providers/<string:handle>", methods=["GET"])
@auth_required
@blp.response(200, MyProviderOutSchema)
def show(handle: str) -> Any:
    """Your record of one provider (404 unless they made you an offer)."""
    return services.get(g.user, handle)


@blp.route("/me/providers/<string:handle>", methods=["PUT"])
@auth_required
@blp.arguments(MyProviderInSchema, required=False)
@blp.response(200, MyProviderOutSchema)
def update(data: dict[str, Any], handle: str) -> Any:
    """Set your private note, "would hire again" and favourite for a provider you dealt with.
    Fields you leave out stay as they were. Only you ever see this record."""
    return services.update(g.user, handle, data)
