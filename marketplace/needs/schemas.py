from marshmallow import ValidationError, fields, validate, validates_schema

from marketplace.media.schemas import NeedPhotoSchema, avatar_field
from marketplace.needs.models import Audience, NeedStatus
from marketplace.pagination import PageArgs
from marketplace.providers.models import MAX_RADIUS_KM, MIN_RADIUS_KM
from marketplace.schemas import (
    ApproximatePointSchema,
    LocationInSchema,
    MoneySchema,
    SafeString,
    Schema,
    aware_datetime,
    text,
)

STATUSES = [s.value for s in NeedStatus]
AUDIENCES = [a.value for a in Audience]


class NeedInSchema(Schema):
    """Contact details typed into `title` or `description` (phone numbers, e-mail addresses,
    your address or full name) are stored as written but hidden from providers until you
    accept one of their offers; only that provider then sees them, with `address`."""

    title = text(120, min_len=3, required=True)
    description = text(5000, load_default="")
    category = SafeString(required=True, validate=validate.Length(min=1, max=40))
    location = fields.Nested(LocationInSchema, required=True)
    place = text(200, load_default=None, allow_none=True, metadata={"description": (
        "Ask for a public place label. It is never stored as typed (every matched provider "
        "reads it): the geocoder's name for the ~1 km grid cell of the need's point is stored "
        "instead, whatever the text. 422 naming `place` when the geocoder has no name for it. "
        "Without `place`, a `location.query` need is labelled with the query's answer.")})
    address = text(300, load_default=None, allow_none=True,
                   metadata={"description": "Exact address; shown only to the accepted provider."})
    radius_km = fields.Float(required=True, allow_nan=False,
                             validate=validate.Range(min=MIN_RADIUS_KM, max=MAX_RADIUS_KM),
                             error_messages={"required": "Say how far a provider may come, "
                                             f"{MIN_RADIUS_KM}-{MAX_RADIUS_KM} km."})
    budget = fields.Nested(MoneySchema, required=True)
    needed_by = aware_datetime(load_default=None, allow_none=True)
    expires_at = aware_datetime(load_default=None, allow_none=True,
                                metadata={"description": "Default: 48 hours from now."})
    max_offers = fields.Integer(strict=True, load_default=None, allow_none=True,
                                validate=validate.Range(min=1, max=100))
    audience = SafeString(load_default=Audience.NEARBY.value,
                          validate=validate.OneOf(AUDIENCES),
                          metadata={"enum": AUDIENCES, "description": (
                              "nearby (default): every matching provider in reach. "
                              "favourites: only your favourite providers (GET /api/v1/me/"
                              "providers), wherever they are and whatever they serve; no one "
                              "else sees it, and no favourite learns who the others are.")})


class NeedPatchSchema(Schema):
    """What a customer may change of an open need: its text, budget and dates. Whatever is
    left out stays as it is. Providers with an offer on it are told (`need.updated`)."""

    title = text(120, min_len=3)
    description = text(5000)
    budget = fields.Nested(MoneySchema, metadata={
        "description": "In the need's currency (offers are made in it)."})
    needed_by = aware_datetime(allow_none=True)
    expires_at = aware_datetime(metadata={
        "description": "When it stops taking offers: in the future, within 30 days from now."})


class CustomerContactSchema(Schema):
    name = fields.String()
    email = fields.String()
    phone = fields.String(allow_none=True)
    avatar = avatar_field()


class NeedOutSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    status = fields.String(metadata={"enum": STATUSES})
    location = fields.Nested(ApproximatePointSchema)
    place = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    distance_band = fields.String(allow_none=True)
    radius_km = fields.Float()
    budget = fields.Nested(MoneySchema)
    needed_by = fields.AwareDateTime(allow_none=True)
    expires_at = fields.AwareDateTime()
    max_offers = fields.Integer(allow_none=True)
    offer_count = fields.Integer()
    created_at = fields.AwareDateTime()
    edited_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the customer last changed its text, budget or dates."})
    assigned_at = fields.AwareDateTime(allow_none=True)
    completed_at = fields.AwareDateTime(allow_none=True)
    cancelled_at = fields.AwareDateTime(allow_none=True)
    cancelled_by = fields.String(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    accepted_offer_id = fields.Integer(allow_none=True)
    customer = fields.Nested(CustomerContactSchema, allow_none=True,
                             metadata={"description": "Only for the customer and, after "
                                       "acceptance, the accepted provider."})
    viewer_role = fields.String()
    audience = fields.String(allow_none=True, metadata={
        "enum": AUDIENCES, "description": "Who you sent it to; only for the customer."})
    direct = fields.Boolean(metadata={
        "description": "The customer sent this need to you (or to chosen providers) directly "
                       "rather than to every provider nearby, or @mentioned you in it."})
    intents = fields.List(fields.String(), metadata={"description": (
        "The ?intent signals of the title and description, normalised (NFKC, case-folded, "
        "accents stripped from Latin, Greek and Cyrillic letters), without the `?`, in the "
        "order written; see docs/api.md, \"Signals\".")})
    topics = fields.List(fields.String(), metadata={"description": "The #topic signals, as "
                                                    "`intents`."})
    mentions = fields.List(fields.String(), metadata={"description": "The @mentioned handles, "
                                                      "as `intents`."})
    photos = fields.List(fields.Nested(NeedPhotoSchema), metadata={
        "description": "The customer's photos of what is needed, oldest first: for everyone "
                       "who may see the need (POST /api/v1/needs/{need_id}/photos adds one)."})


# What a notification carries about a need (``needs.presenters.summary``).
SUMMARY_FIELDS = ("id", "title", "category", "status", "budget", "location", "place",
                  "distance_band", "needed_by", "expires_at", "created_at")


class NeedListArgs(PageArgs):
    mine = fields.Boolean(load_default=True, validate=validate.Equal(
                              True, error="Only your own needs can be listed here; providers "
                              "see needs in their feed."),
                          metadata={"description": "Must be true: customers list their own "
                                    "needs; providers see theirs through offers."})
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))


class CancelSchema(Schema):
    reason = text(500, load_default=None, allow_none=True)


_PLACE_QUERY = text(200, load_default=None, metadata={
    "description": "A place to look up instead of `lat` and `lon` (e.g. 'Austin, TX'); "
                   "an unknown place is a 422 naming it. Coordinates win when both are "
                   "sent."})


class SuggestionArgs(Schema):
    """What a customer has typed so far, and where (a point, or a place to look up)."""

    text = SafeString(load_default="", validate=validate.Length(max=5000), metadata={
        "description": "The field being typed, as it reads (not trimmed): a `?` or `#` tag "
                       "at its very end is the tag being typed, completed by prefix."})
    also = SafeString(load_default="", validate=validate.Length(max=5000), metadata={
        "description": "The need's other text field (title or description): tags written "
                       "there are not suggested again, and count for the category."})
    lat = fields.Float(load_default=None, allow_nan=False,
                       validate=validate.Range(min=-90, max=90), metadata={
                           "description": "Where the need is, with `lon` (or send "
                                          "`place_query`); a 422 names the one missing."})
    lon = fields.Float(load_default=None, allow_nan=False,
                       validate=validate.Range(min=-180, max=180),
                       metadata={"description": "With `lat`."})
    place_query = _PLACE_QUERY  # (``text`` names a field here)

    @validates_schema
    def _located(self, data: dict[str, object], **_kwargs: object) -> None:
        lat, lon = data.get("lat"), data.get("lon")
        if lat is None and lon is None:
            if not data.get("place_query"):
                raise ValidationError({"lat": ["Send lat and lon, or place_query."],
                                       "lon": ["Send lat and lon, or place_query."]})
        elif lat is None:
            raise ValidationError({"lat": ["Send lat with lon."]})
        elif lon is None:
            raise ValidationError({"lon": ["Send lon with lat."]})


class SuggestedTagSchema(Schema):
    kind = fields.String(metadata={"enum": ["intent", "topic"]})
    tag = fields.String(metadata={"description": "The normalised tag, without its sigil."})
    spelled = fields.String(metadata={"description": "The tag as it is written: `?kayak`."})
    count = fields.Integer(metadata={"description": (
        "Needs with the tag nearby in the last 7 days, as the lower edge of its bucket (as "
        "in GET /api/v1/trends): k, 5, 10, 20, 50, 100, ...")})


class SuggestedCategorySchema(Schema):
    slug = fields.String()
    name = fields.String()


class SuggestionsSchema(Schema):
    typing = fields.String(allow_none=True, metadata={"description": (
        "The tag being typed at the end of `text`, as written (`?KA`), which a suggestion "
        "completes; null when none is.")})
    tags = fields.List(fields.Nested(SuggestedTagSchema), metadata={"description": (
        "At most 8 ?intent and #topic tags used within ~25 km in the last 7 days by at least "
        "k distinct customers per ~10 km tile, by count then tag; of the kind and prefix "
        "being typed, if any; none already written in `text` or `also`.")})
    category = fields.Nested(SuggestedCategorySchema, allow_none=True, metadata={
        "description": "The category most distinct customers nearby (~25 km, the last 30 "
                       "days) chose with the tags written, when at least k did; else null."})
