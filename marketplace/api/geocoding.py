"""JSON route: place-name search."""

from typing import Any

from marshmallow import fields, validate

from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.geocoding import services
from marketplace.schemas import Schema, text

blp = Blueprint("geocoding_api", __name__, url_prefix="/api/v1", description="Geocoding")


class GeocodeArgs(Schema):
    q = text(200, min_len=1, required=True, metadata={"description": "e.g. 'Austin, TX'"})
    limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=10))


class PlaceSchema(Schema):
    label = fields.String()
    lat = fields.Float()
    lon = fields.Float()
    country_code = fields.String(allow_none=True)
    population = fields.Integer(allow_none=True)
    source = fields.String()


class PlacesSchema(Schema):
    items = fields.List(fields.Nested(PlaceSchema))


@blp.route("/geocode", methods=["GET"])
@auth_required
@blp.arguments(GeocodeArgs, location="query")
@blp.response(200, PlacesSchema)
def geocode(args: dict[str, Any]) -> Any:
    """Candidate places for a name, best first; an unknown place is a 422 naming `q`."""
    return {"items": services.search(args["q"], args["limit"], field="q")}
