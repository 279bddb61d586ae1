from marshmallow import fields, validate

from marketplace.media.schemas import avatar_field
from marketplace.offers.models import OfferStatus
from marketplace.pagination import OffsetPageArgs, PageArgs
from marketplace.providers.schemas import LIKE_YOU, LikeYouSchema, ReputationSchema
from marketplace.schemas import MoneySchema, Schema, aware_datetime, text

SORTS = {
    "reputation": "Best reputation first (Bayesian score, so a few lucky ratings do not outrank "
    "a long good record); equal scores by lower price, then earlier offer.",
    "price": "Lowest price first; equal prices by better reputation.",
    "distance": "Nearest provider first, by distance band; then lower price.",
    "newest": "Most recent offer first.",
}
DEFAULT_SORT = "reputation"


class OfferInSchema(Schema):
    price = fields.Nested(MoneySchema, load_default=None,
                          metadata={"description": "Omit to take the need at its budget."})
    message = text(2000, load_default="")
    available_at = aware_datetime(load_default=None, allow_none=True)


class OfferPatchSchema(Schema):
    price = fields.Nested(MoneySchema)
    message = text(2000)
    available_at = aware_datetime(allow_none=True)


class OfferAcceptSchema(Schema):
    revision = fields.Integer(
        strict=True, load_default=None, validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "The offer's revision as you saw it. When given, the offer is "
                  "accepted only if the provider has not revised it since (409 otherwise), so "
                  "you accept the terms you read. Clients should always send it."})


class OfferProviderSchema(Schema):
    handle = fields.String()
    display_name = fields.String()
    avatar = avatar_field()
    reputation = fields.Nested(ReputationSchema)
    like_you = fields.Nested(LikeYouSchema, allow_none=True, metadata={"description": LIKE_YOU})


class OfferOutSchema(Schema):
    id = fields.Integer()
    need_id = fields.Integer()
    status = fields.String(metadata={"enum": [s.value for s in OfferStatus]})
    revision = fields.Integer(metadata={
        "description": "Starts at 1; every revision by the provider adds 1. Pass it when "
                       "accepting."})
    price = fields.Nested(MoneySchema)
    message = fields.String()
    available_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    distance_band = fields.String()
    decline_reason = fields.String(allow_none=True, metadata={
        "description": "Why a declined offer was declined, in words for the reader; null "
                       "otherwise."})
    provider = fields.Nested(OfferProviderSchema)


class OfferListArgs(OffsetPageArgs):
    sort = fields.String(load_default=DEFAULT_SORT, validate=validate.OneOf(list(SORTS)))


class OfferListSchema(Schema):
    items = fields.List(fields.Nested(OfferOutSchema))
    next_cursor = fields.String(allow_none=True)
    sort = fields.String()
    sort_explanation = fields.String()


class MyOffersArgs(PageArgs):
    status = fields.String(load_default=None,
                           validate=validate.OneOf([s.value for s in OfferStatus]))
