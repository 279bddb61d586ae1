"""Webhook API shapes."""

from __future__ import annotations

from marshmallow import fields, validate

from marketplace.notifications.types import NotificationType
from marketplace.schemas import Schema
from marketplace.webhooks.models import URL_MAX

TYPES = sorted(t.value for t in NotificationType)


def _url(required: bool) -> fields.String:
    return fields.String(required=required, validate=validate.Length(min=1, max=URL_MAX),
                         metadata={"description": "Where deliveries are POSTed: an https:// URL "
                                   "on a public address."})


def _types(required: bool) -> fields.List:
    return fields.List(fields.String(validate=validate.OneOf(TYPES)), required=required,
                       validate=validate.Length(min=1, max=len(TYPES)),
                       metadata={"description": "The notification types to deliver."})


class WebhookInSchema(Schema):
    url = _url(required=True)
    types = _types(required=True)


class WebhookPatchSchema(Schema):
    """What may change of a webhook; whatever is left out stays as it is."""

    url = _url(required=False)
    types = _types(required=False)
    enabled = fields.Boolean(metadata={
        "description": "`false` pauses deliveries (they wait, pending); `true` resumes a "
                       "disabled webhook: what it is still owed is sent at once."})


class WebhookOutSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    types = fields.List(fields.String())
    enabled = fields.Boolean()
    created_at = fields.DateTime()
    previous_until = fields.DateTime(allow_none=True, metadata={
        "description": "After a secret rotation, until when the previous secret also signs "
                       "each delivery (a second `v1,` signature); null when none does."})


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


class AttemptOutSchema(Schema):
    id = fields.Integer()
    attempted_at = fields.DateTime()
    duration_ms = fields.Integer(metadata={"description": "How long the attempt took."})
    response_status = fields.Integer(allow_none=True, metadata={
        "description": "The answer's HTTP status; null when there was no answer."})
    response_body = fields.String(allow_none=True, metadata={
        "description": "The start of the answer's body (at most 1,000 characters)."})
    error = fields.String(allow_none=True, metadata={
        "description": "Why there was no answer (refused address, time-out, connection)."})
