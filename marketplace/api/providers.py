"""JSON routes for categories and provider profiles."""

from typing import Any

from flask import g

from marketplace.accounts.auth import user_for_token
from marketplace.api.auth import auth_required, bearer_token
from marketplace.api.base import Blueprint
from marketplace.api.conditional import conditional
from marketplace.geo import grid_cell_centre
from marketplace.media import services as media
from marketplace.offers import reputation
from marketplace.pagination import OffsetPageArgs, PageArgs, offset_page, page, page_of
from marketplace.providers import services
from marketplace.providers.schemas import (
    CategorySchema,
    ProviderInSchema,
    ProviderOutSchema,
    PublicProviderSchema,
)
from marketplace.ratings import services as ratings
from marketplace.ratings.schemas import RatingOutSchema

blp = Blueprint("providers_api", __name__, url_prefix="/api/v1", description="Providers")


@blp.route("/categories", methods=["GET"])
@blp.doc(security=[])
@blp.arguments(OffsetPageArgs, location="query")
@blp.response(200, page_of(CategorySchema))
def categories(args: dict[str, Any]) -> Any:
    """The fixed list of categories needs and providers use, by name."""
    return page(*offset_page(list(services.all_categories()), args["cursor"], args["limit"]))


@blp.route("/me/provider", methods=["PUT"])
@auth_required
@blp.limited("RATE_LIMIT_PLACE_CHANGES")
@blp.arguments(ProviderInSchema)
@blp.response(200, ProviderOutSchema)
def save_provider(data: dict[str, Any]) -> Any:
    """Create or replace your provider profile."""
    return services.save_profile(g.user, data)


@blp.route("/providers/<string:handle>", methods=["GET"])
@blp.doc(security=[])
@conditional()
@blp.response(200, PublicProviderSchema)
def public_profile(handle: str) -> Any:
    """A provider's public profile and reputation (their base is shown only approximately).
    Send your token to read ``like_you`` too: what customers like you thought (a token that is
    not valid reads the profile as signed out)."""
    provider = services.by_handle(handle)
    token = bearer_token()
    viewer = user_for_token(token) if token else None
    cell = grid_cell_centre(provider.base_lat, provider.base_lon)
    return {
        "handle": provider.handle,
        "display_name": provider.display_name,
        "avatar": media.avatar_urls(media.avatar_of(provider.user)),
        "bio": provider.bio,
        "categories": [c.slug for c in provider.categories],
        "service_area": {"lat": cell.lat, "lon": cell.lon, "approximate": True},
        "radius_km": provider.radius_km,
        "active": provider.active,
        "member_since": provider.created_at,
        "reputation": reputation.for_providers([provider.id])[provider.id],
        "like_you": reputation.like_you_on_profile(viewer.id if viewer else None, provider.id),
    }


@blp.route("/providers/<string:handle>/ratings", methods=["GET"])
@blp.doc(security=[])
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(RatingOutSchema))
def provider_ratings(args: dict[str, Any], handle: str) -> Any:
    """Ratings of a provider, newest first, with their replies."""
    provider = services.by_handle(handle)
    return page(*ratings.for_provider(provider.id, args["cursor"], args["limit"]))
