from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from marketplace.media.schemas import avatar_field
from marketplace.providers.models import HANDLE, MAX_RADIUS_KM, MIN_RADIUS_KM
from marketplace.schemas import ApproximatePointSchema, PointSchema, SafeString, Schema, text
from marketplace.signals.parser import parse_subscription


class CategorySchema(Schema):
    slug = fields.String()
    name = fields.String()


class ProviderInSchema(Schema):
    handle = fields.String(required=True, validate=validate.Length(min=3, max=30), metadata={
        "description": "3-30 of a-z, 0-9, '-', not starting or ending with '-'",
        "pattern": "^[a-z0-9][a-z0-9-]{1,28}[a-z0-9]$"})
    display_name = text(80, min_len=1, required=True)
    bio = text(2000, load_default="")
    categories = fields.List(SafeString(validate=validate.Length(max=40)), required=True,
                             validate=validate.Length(min=1, max=20))
    base = fields.Nested(PointSchema, required=True)
    radius_km = fields.Float(required=True, allow_nan=False,
                             validate=validate.Range(min=MIN_RADIUS_KM, max=MAX_RADIUS_KM))
    active = fields.Boolean(load_default=True)
    tags = fields.List(SafeString(validate=validate.Length(min=2, max=41)), load_default=list,
                       validate=validate.Length(max=20), metadata={"description": (
                           "Intent and topic tags you take work for besides your categories, "
                           "written as in a need: `?kayak`, `#boats` (normalised: case, accents "
                           "and width do not matter). A need with one of them is posted to you "
                           "whatever its category, under the same distance rule.")})
    direct_asks = fields.Boolean(load_default=True, metadata={"description": (
        "Whether a need that @mentions your handle is sent to you whatever its distance and "
        "category (default true).")})

    @validates("tags")
    def _tags(self, value: list[str], **_: Any) -> None:
        wrong = [t for t in value if parse_subscription(t) is None]
        if wrong:
            raise ValidationError("Write each tag as ?intent or #topic (letters, digits, '_'): "
                                  + ", ".join(repr(t) for t in wrong) + ".")

    @validates("handle")
    def _handle(self, value: str, **_: Any) -> None:
        if not HANDLE.fullmatch(value):
            raise ValidationError("3-30 lower-case letters, digits or '-', not starting or "
                                  "ending with '-'.")


class ProviderOutSchema(Schema):
    """The caller's own profile: exact base included."""

    id = fields.Integer()
    handle = fields.String()
    display_name = fields.String()
    bio = fields.String()
    categories = fields.Method("_slugs")
    base = fields.Method("_base")
    radius_km = fields.Float()
    active = fields.Boolean()
    tags = fields.List(fields.String(), attribute="subscriptions",
                       metadata={"description": "Your tag subscriptions, normalised, with their "
                                 "sigils (`?kayak`, `#boats`)."})
    direct_asks = fields.Boolean()
    created_at = fields.AwareDateTime()

    def _slugs(self, obj: Any) -> list[str]:
        return [c.slug for c in obj.categories]

    def _base(self, obj: Any) -> dict[str, float]:
        return {"lat": obj.base_lat, "lon": obj.base_lon}


class ReputationSchema(Schema):
    count = fields.Integer()
    mean = fields.Float(allow_none=True)
    score = fields.Float(metadata={"description": "Bayesian score used for ranking."})
    histogram = fields.Dict(keys=fields.String(), values=fields.Integer(),
                            metadata={"description": "Stars '1'..'5' -> count"})
    sub_scores = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True))
    completed_jobs = fields.Integer()
    completion_rate = fields.Float(allow_none=True)
    is_new = fields.Boolean()


class LikeYouGroupSchema(Schema):
    score = fields.Float(metadata={"description": "The group's mean stars, to the half star."})
    customers = fields.Integer(metadata={
        "description": "How many of them rated the provider, as the lower edge of its bucket "
                       "(k, 5, 10, 20, 50, 100, 200, 500, ...)."})


class LikeYouSchema(Schema):
    min_customers = fields.Integer(metadata={
        "description": "k: a group's score is shown only once at least this many of its "
                       "customers rated the provider."})
    agreeing = fields.Nested(LikeYouGroupSchema, allow_none=True, metadata={
        "description": "Customers whose ratings agree with yours (docs/api.md, \"People like "
                       "you\"); null below k."})
    nearby = fields.Nested(LikeYouGroupSchema, allow_none=True, metadata={
        "description": "Customers whose rated job was near you; null below k or when we know "
                       "no place of yours."})


LIKE_YOU = ("What people like you thought: for the signed-in customer only, null otherwise. "
            "Never names anyone.")


class PublicProviderSchema(Schema):
    handle = fields.String()
    display_name = fields.String()
    avatar = avatar_field()
    bio = fields.String()
    categories = fields.List(fields.String())
    service_area = fields.Nested(ApproximatePointSchema)
    radius_km = fields.Float()
    active = fields.Boolean()
    member_since = fields.AwareDateTime()
    reputation = fields.Nested(ReputationSchema)
    like_you = fields.Nested(LikeYouSchema, allow_none=True, metadata={"description": LIKE_YOU})
