from marshmallow import fields

from marketplace.schemas import Schema

AVATAR_DESCRIPTION = ("The person's photo (a 256 px and a 64 px WebP square), or null: none, or "
                      "not yours to see (a customer's reaches a provider only once that "
                      "provider's offer is accepted). Show initials instead.")


class AvatarSchema(Schema):
    url = fields.String(metadata={"description": "256 px square; cacheable for ever (the path "
                                  "names the image's SHA-256)."})
    small_url = fields.String(metadata={"description": "64 px square, as `url`."})


def avatar_field(**metadata: str) -> fields.Nested:
    return fields.Nested(AvatarSchema, allow_none=True,
                         metadata={"description": AVATAR_DESCRIPTION, **metadata})


class NeedPhotoSchema(Schema):
    id = fields.Integer()
    url = fields.String(metadata={"description": "The photo (WebP, at most 1600 px a side), "
                                  "for whoever may see the need."})
    small_url = fields.String(metadata={"description": "At most 400 px a side, as `url`."})
    width = fields.Integer()
    height = fields.Integer()
