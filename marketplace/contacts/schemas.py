from marshmallow import fields

from marketplace.blocks.models import NOTE_MAX
from marketplace.pagination import OffsetPageArgs
from marketplace.providers.schemas import ReputationSchema
from marketplace.schemas import Schema, text


class MyProviderInSchema(Schema):
    """Every field is optional: what is not sent stays as it was."""

    note = text(NOTE_MAX, metadata={
        "description": "Your private note; no one else ever sees it. Trimmed; empty clears it."})
    would_hire_again = fields.Boolean(allow_none=True, metadata={
        "description": "true, false, or null for not decided."})
    favourite = fields.Boolean(metadata={
        "description": "Favourites receive the needs you send to favourites "
                       "(POST /api/v1/needs with audience \"favourites\")."})


class MyProviderOutSchema(Schema):
    handle = fields.String()
    display_name = fields.String()
    reputation = fields.Nested(ReputationSchema)
    offers = fields.Integer(metadata={"description": "Offers they made on your needs."})
    hires = fields.Integer(metadata={"description": "Of those, the ones you accepted."})
    last_dealt_at = fields.AwareDateTime(metadata={
        "description": "When their latest offer to you was made or last changed."})
    note = fields.String()
    would_hire_again = fields.Boolean(allow_none=True)
    favourite = fields.Boolean()
    blocked = fields.Boolean(metadata={
        "description": "Read-only here: block and unblock with PUT/DELETE "
                       "/api/v1/me/blocks/{handle}."})


class MyProviderListArgs(OffsetPageArgs):
    favourites = fields.Boolean(load_default=False,
                                metadata={"description": "Only your favourites."})
