"""Webhook API shapes."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from marketplace.notifications.types import NotificationType
from marketplace.webhooks.models import URL_MAX

TYPES = sorted(t.value for t in NotificationType)


class WebhookInSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=URL_MAX),
                        metadata={"description": "Where deliveries are POSTed: an https:// URL "
                                  "on a public address."})
    types = fields.List(fields.String(validate=validate.OneOf(TYPES)), required=True,
                        validate=validate.Length(min=1, max=len(TYPES)),
                        metadata={"description": "The notification types to deliver."})


class WebhookOutSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    types = fields.List(fields.String())
    enabled = fields.Boolean()
    created_at = fields.DateTime()


class WebhookCreatedSchema(WebhookOutSchema):
    secret = fields.String(metadata={"description": "The signing secret (`whsec_...`), shown "
                                     "this once."})
