"""JSON route for trends: what people nearby want right now (aggregates only)."""

from typing import Any

from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.signals import services
from marketplace.signals.schemas import TrendsArgs, TrendsSchema

blp = Blueprint("trends_api", __name__, url_prefix="/api/v1", description="Trends")


@blp.route("/trends", methods=["GET"])
@auth_required
@blp.limited("RATE_LIMIT_TRENDS")
@blp.arguments(TrendsArgs, location="query")
@blp.response(200, TrendsSchema)
def trends(args: dict[str, Any]) -> Any:
    """The top ?intent and #topic tags of needs posted near a point in the last 24 hours or 7
    days, with the change against the window before. Aggregates only: a ~10 km tile counts
    towards a tag only when at least `min_customers` distinct customers used it there, counts
    are bucketed, and ties rank alphabetically (docs/api.md, "Trends")."""
    return services.trends(args["lat"], args["lon"], args["radius_km"], args["window"])
