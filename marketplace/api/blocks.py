"""JSON routes: the customer's block list."""

from typing import Any

from flask import g
from marshmallow import fields

from marketplace import lifecycle
from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.blocks import services
from marketplace.pagination import OffsetPageArgs, offset_page, page, page_of
from marketplace.schemas import EmptySchema, Schema

blp = Blueprint("blocks_api", __name__, url_prefix="/api/v1", description="Blocking providers")


class BlockedSchema(Schema):
    handle = fields.String()
    display_name = fields.String()


@blp.route("/me/blocks", methods=["GET"])
@auth_required
@blp.arguments(OffsetPageArgs, location="query")
@blp.response(200, page_of(BlockedSchema))
def list_blocks(args: dict[str, Any]) -> Any:
    """Providers you blocked: they are never matched to your needs and cannot see them."""
    return page(*offset_page(list(services.blocked_by(g.user)), args["cursor"], args["limit"]))


@blp.route("/me/blocks/<string:handle>", methods=["PUT"])
@auth_required
@blp.arguments(EmptySchema, required=False)
@blp.response(200, BlockedSchema)
def block(_body: dict[str, Any], handle: str) -> Any:
    """Block a provider (idempotent). Ends every open dealing with them at once: their pending
    offers on your open needs are declined, a job assigned to them is cancelled, and they can
    no longer see your needs, offers or messages."""
    return lifecycle.block(g.user, handle)


@blp.route("/me/blocks/<string:handle>", methods=["DELETE"])
@auth_required
@blp.response(204)
def unblock(handle: str) -> None:
    """Unblock a provider."""
    services.unblock(g.user, handle)
