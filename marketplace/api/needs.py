"""JSON routes for needs and their lifecycle."""

from typing import Any

from flask import g, jsonify, request

from marketplace import access, lifecycle
from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.api.conditional import check_if_match, conditional, digest_tag, tagged
from marketplace.needs import services
from marketplace.needs.models import Need
from marketplace.needs.schemas import (
    CancelSchema,
    NeedInSchema,
    NeedListArgs,
    NeedOutSchema,
    NeedPatchSchema,
    SuggestionArgs,
    SuggestionsSchema,
)
from marketplace.pagination import RankedPageArgs, page, page_of
from marketplace.schemas import EmptySchema

blp = Blueprint("needs_api", __name__, url_prefix="/api/v1", description="Needs")


@blp.route("/needs", methods=["POST"])
@auth_required
@blp.limited("RATE_LIMIT_NEEDS")
@blp.idempotent
@blp.arguments(NeedInSchema)
@blp.response(201, NeedOutSchema)
def create(data: dict[str, Any]) -> Any:
    """Post a need. Matching providers are told at once.

    Contact details are hidden from providers until you accept an offer: `address`, your
    e-mail, phone and full name (providers see your first name), and phone numbers or e-mail
    addresses typed into `title` and `description` (shown to providers as
    "[phone hidden until you accept]"; you see your text as written). Only the provider
    whose offer you accept then sees them, for this need. `place` is stored as the
    geocoder's name for the need's ~1 km grid cell, never as typed."""
    need = services.create(g.user, data)
    return access.need_view(g.user, need, "customer")


@blp.route("/needs", methods=["GET"])
@auth_required
@blp.arguments(NeedListArgs, location="query")
@blp.response(200, page_of(NeedOutSchema))
def list_mine(args: dict[str, Any]) -> Any:
    """Your own needs, newest first (``mine`` must be true: providers see needs in their
    feed)."""
    items, cursor = services.list_mine(g.user, args["status"], args["cursor"], args["limit"])
    return page(access.need_views(g.user, items, "customer"), cursor)


@blp.route("/feed", methods=["GET"])
@auth_required
@blp.limited("RATE_LIMIT_LOCATION_READS")
@blp.arguments(RankedPageArgs, location="query")
@blp.response(200, page_of(NeedOutSchema))
def feed(args: dict[str, Any]) -> Any:
    """Open needs posted to you as a provider: nearest distance band first, then newest."""
    return page(*access.feed(g.user, args["cursor"], args["limit"]))


@blp.route("/needs/suggestions", methods=["GET"])
@auth_required
@blp.limited("RATE_LIMIT_REACH_PREVIEWS")
@blp.arguments(SuggestionArgs, location="query")
@blp.response(200, SuggestionsSchema)
def suggestions(args: dict[str, Any]) -> Any:
    """Tags and a category to offer while a need is being typed, from what is used near
    `lat`/`lon` (or `place_query`): the ?intent or #topic tag being typed at the end of `text`
    completed by prefix, or else the tags used nearby, never one already written in `text`
    or `also`. Aggregates under the trends rules (docs/api.md, "Suggestions while typing");
    the web form's `GET /needs/suggestions` gives the same answer."""
    return services.suggestions(args)


@blp.route("/needs/<int:need_id>", methods=["GET"])
@auth_required
@blp.limited("RATE_LIMIT_LOCATION_READS")
@conditional()
@blp.response(200, NeedOutSchema)
def show(need_id: int) -> Any:
    """One need, as much of it as you may see."""
    need, role = access.need_with_role(g.user, need_id)
    return access.need_view(g.user, need, role)


@blp.route("/needs/<int:need_id>", methods=["PATCH"])
@auth_required
@blp.limited("RATE_LIMIT_NEEDS")
@tagged(digest_tag)
@blp.arguments(NeedPatchSchema, required=False)
@blp.response(200, NeedOutSchema)
def update(data: dict[str, Any], need_id: int) -> Any:
    """Change your open need's `title`, `description`, `budget` (same currency), `needed_by`
    or `expires_at`; what you leave out stays. Providers with an offer on it are told
    (`need.updated`), a provider it newly @mentions, or who subscribes to an ?intent or
    #topic tag it newly has and is in reach, is sent it (`need.matched`), and its signals and
    trends are counted anew. Send its `ETag` as `If-Match` so a change made meanwhile is not
    overwritten unseen (412)."""
    return access.need_view(g.user, lifecycle.edit(g.user, need_id, data, _unchanged_since),
                            "customer")


def _unchanged_since(need: Need) -> None:
    """412 unless ``If-Match`` names the need as its customer last read it (its ``ETag``)."""
    if request.headers.get("If-Match"):
        check_if_match(digest_tag(jsonify(NeedOutSchema().dump(
            access.need_view(g.user, need, "customer")))), "need")


@blp.route("/needs/<int:need_id>/cancel", methods=["POST"])
@auth_required
@blp.arguments(CancelSchema, required=False)
@blp.response(200, NeedOutSchema)
def cancel(data: dict[str, Any], need_id: int) -> Any:
    """Cancel (customer while open or assigned; accepted provider while assigned, with reason)."""
    need = lifecycle.cancel(g.user, need_id, data["reason"])
    return access.need_view(g.user, need, access.viewer_role(g.user, need) or "customer")


@blp.route("/needs/<int:need_id>/complete", methods=["POST"])
@auth_required
@blp.arguments(EmptySchema, required=False)
@blp.response(200, NeedOutSchema)
def complete(_body: dict[str, Any], need_id: int) -> Any:
    """Mark an assigned job done (customer only)."""
    need = lifecycle.complete(g.user, need_id)
    return access.need_view(g.user, need, "customer")
