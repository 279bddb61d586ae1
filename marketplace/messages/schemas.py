from typing import Any

from marshmallow import fields

from marketplace.media.schemas import avatar_field
from marketplace.schemas import Schema, text


class MessageInSchema(Schema):
    body = text(4000, min_len=1, required=True)


class MessageOutSchema(Schema):
    id = fields.Integer()
    offer_id = fields.Integer()
    sender = fields.Method("_sender", metadata={"description": "customer | provider"})
    sender_name = fields.String(allow_none=True, metadata={
        "description": "A provider's display name; the customer's first name until the offer "
                       "is accepted, then their full name. Null once the sender is erased."})
    sender_avatar = avatar_field()
    body = fields.String()
    created_at = fields.AwareDateTime()

    def _sender(self, obj: Any) -> str | None:
        if obj.sender_id is None:
            return None
        return "customer" if obj.sender_id == obj.offer.need.customer_id else "provider"
