from marshmallow import fields, validate

from marketplace.schemas import SafeString, Schema

WINDOWS = ["24h", "7d"]
MIN_RADIUS_KM, MAX_RADIUS_KM = 1, 100  # as a need's reach (providers.models)


class TrendsArgs(Schema):
    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(required=True, allow_nan=False,
                       validate=validate.Range(min=-180, max=180))
    radius_km = fields.Float(load_default=10, allow_nan=False,
                             validate=validate.Range(min=MIN_RADIUS_KM, max=MAX_RADIUS_KM))
    window = SafeString(load_default="24h", validate=validate.OneOf(WINDOWS),
                        metadata={"enum": WINDOWS})


class TrendItemSchema(Schema):
    tag = fields.String(metadata={"description": "The normalised tag, without its sigil."})
    count = fields.Integer(metadata={"description": (
        "Needs with the tag in the area and window, as the lower edge of its bucket: k "
        "(min_customers), 5, 10, 20, 50, 100, 200, 500, 1000, ...")})
    previous = fields.Integer(metadata={"description": "The same for the previous window "
                                        "(0: under the floor then)."})
    change = fields.Integer(metadata={"description": "count - previous."})


class TrendsSchema(Schema):
    window = fields.String(metadata={"enum": WINDOWS})
    since = fields.AwareDateTime(metadata={"description": "Start of the window (a whole hour)."})
    until = fields.AwareDateTime(metadata={"description": "End of the window (the end of the "
                                           "current hour)."})
    min_customers = fields.Integer(metadata={"description": (
        "k: a ~10 km tile counts towards a tag only when at least this many distinct "
        "customers used the tag there in the window.")})
    intents = fields.List(fields.Nested(TrendItemSchema), metadata={
        "description": "Top ?intent tags, by count then tag (at most 10)."})
    topics = fields.List(fields.Nested(TrendItemSchema), metadata={
        "description": "Top #topic tags, likewise."})
