"""The alert settings, in and out (GET/PUT /api/v1/me/alerts)."""

from __future__ import annotations

from marshmallow import fields, validate

from marketplace.schemas import SafeString, Schema


class AlertSettingsSchema(Schema):
    categories = fields.List(
        SafeString(validate=validate.Length(min=1, max=40)), load_default=list,
        validate=validate.Length(max=20), metadata={"description": (
            "Category slugs (GET /api/v1/categories): a need in one of them that matches you "
            "while you are not online is mailed to you. Empty: no category alerts.")})
    direct_asks = fields.Boolean(load_default=False, metadata={"description": (
        "Mail me needs sent to me directly (an @mention of my handle, a customer's "
        "favourites) while I am not online.")})
    tags = fields.Boolean(load_default=False, metadata={"description": (
        "Mail me needs that reach me through a tag I subscribe to while I am not online.")})
