from typing import Any

from marshmallow import fields, validate

from marketplace.schemas import Schema, text

STARS = validate.Range(min=1, max=5)


class SubScoresSchema(Schema):
    quality = fields.Integer(strict=True, validate=STARS, allow_none=True)
    punctuality = fields.Integer(strict=True, validate=STARS, allow_none=True)
    communication = fields.Integer(strict=True, validate=STARS, allow_none=True)


CHOOSE_STARS = "Choose from 1 to 5 stars."


class RatingInSchema(Schema):
    stars = fields.Integer(strict=True, required=True,
                           validate=validate.Range(min=1, max=5, error=CHOOSE_STARS),
                           error_messages={"required": CHOOSE_STARS, "null": CHOOSE_STARS})
    scores = fields.Nested(SubScoresSchema, load_default=None, allow_none=True)
    comment = text(2000, load_default="")


class ReplyInSchema(Schema):
    body = text(2000, min_len=1, required=True)


class RatingOutSchema(Schema):
    id = fields.Integer()
    need_id = fields.Integer()
    provider = fields.Function(lambda r: r.provider.handle)
    author = fields.Method("_author", metadata={"description": "The customer's first name, or "
                                                "'Former customer' once they deleted their account."})
    stars = fields.Integer()
    scores = fields.Method("_scores")
    comment = fields.String()
    reply = fields.String(allow_none=True)
    replied_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()

    def _author(self, obj: Any) -> str:
        if obj.customer is None:
            return "Former customer"
        return str(obj.customer.first_name)

    def _scores(self, obj: Any) -> dict[str, int | None]:
        return {"quality": obj.quality, "punctuality": obj.punctuality,
                "communication": obj.communication}
