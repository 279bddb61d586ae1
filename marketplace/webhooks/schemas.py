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


class DeliveryOutSchema(Schema):
    id = fields.Integer()
    notification_id = fields.Integer()
    type = fields.String()
    status = fields.String(metadata={"enum": ["pending", "delivered", "failed"]})
    attempts = fields.Integer(metadata={"description": "Attempts made so far."})
    next_at = fields.DateTime(metadata={"description": "When a pending delivery is tried next."})
    response_status = fields.Integer(allow_none=True,
                                     metadata={"description": "The last attempt's HTTP status."})
    response_body = fields.String(allow_none=True, metadata={
        "description": "The start of the last answer's body (at most 1,000 characters)."})
    error = fields.String(allow_none=True, metadata={
        "description": "Why the last attempt got no answer (refused address, time-out)."})
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
