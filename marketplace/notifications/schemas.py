from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from marketplace.notifications.types import NotificationType
from marketplace.schemas import Schema

MAX_ID = 2**63 - 1  # notification ids are 64-bit; larger numbers are refused, not overflowed
EVENT_TYPES = [t.value for t in NotificationType]


class NotificationArgs(Schema):
    after = fields.Integer(validate=validate.Range(min=0, max=MAX_ID),
                           metadata={"description": "Return notifications with a larger id."})
    after_seq = fields.Integer(validate=validate.Range(min=0, max=MAX_ID), metadata={
        "description": "Return notifications with a larger seq (yours count 1, 2, 3, ...)."})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class NotificationSchema(Schema):
    id = fields.Integer()
    seq = fields.Integer(metadata={"description": "Your notifications count 1, 2, 3, ... in "
                                                  "commit order, with no holes."})
    type = fields.String(metadata={"enum": EVENT_TYPES})
    created_at = fields.AwareDateTime()
    text = fields.String(metadata={"description": "What it says to you, in words to show."})
    read_at = fields.AwareDateTime(allow_none=True)
    data = fields.Dict(metadata={"description": "Event-specific; see docs/events.md"})


class NotificationListSchema(Schema):
    items = fields.List(fields.Nested(NotificationSchema))
    last_id = fields.Integer(metadata={"description": "Pass as `after` for the next batch."})
    last_seq = fields.Integer(metadata={
        "description": "Pass as `after_seq` for the next batch: the same position as `last_id`, "
                       "counted in your seqs."})
    unread_count = fields.Integer()


class MarkReadSchema(Schema):
    """Exactly one of ``ids`` or ``up_to`` (the document says so with min/maxProperties)."""
    ids = fields.List(fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID)),
                      validate=validate.Length(min=1, max=500))
    up_to = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID),
                           metadata={"description": "Mark everything up to this id."})

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if ("ids" in data) == ("up_to" in data):
            raise ValidationError("Give exactly one of ids or up_to.", "ids")


class UnreadSchema(Schema):
    marked = fields.Integer()
    unread_count = fields.Integer()
