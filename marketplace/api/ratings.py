"""JSON routes for ratings and replies."""

from typing import Any

from flask import g

from marketplace import lifecycle
from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.ratings import services
from marketplace.ratings.schemas import RatingInSchema, RatingOutSchema, ReplyInSchema

blp = Blueprint("ratings_api", __name__, url_prefix="/api/v1", description="Ratings")


@blp.route("/needs/<int:need_id>/rating", methods=["POST"])
@auth_required
@blp.idempotent
@blp.arguments(RatingInSchema)
@blp.response(201, RatingOutSchema)
def rate(data: dict[str, Any], need_id: int) -> Any:
    """Rate the provider of your completed job (once)."""
    return lifecycle.rate(g.user, need_id, data)


@blp.route("/ratings/<int:rating_id>/reply", methods=["POST"])
@auth_required
@blp.idempotent
@blp.arguments(ReplyInSchema)
@blp.response(201, RatingOutSchema)
def reply(data: dict[str, Any], rating_id: int) -> Any:
    """Post your one public reply to a rating of you."""
    return services.reply(g.user, rating_id, data["body"])
