from marshmallow import fields, validate

from marketplace.schemas import SafeEmail, SafeString, Schema, text


class RegisterSchema(Schema):
    email = SafeEmail(required=True, validate=validate.Length(max=254))
    password = SafeString(required=True, validate=validate.Length(min=10, max=200),
                          load_only=True)
    name = text(100, min_len=1, required=True)
    phone = text(40, load_default=None, allow_none=True)


class CredentialsSchema(Schema):
    email = SafeString(required=True, validate=validate.Length(max=254))
    password = SafeString(required=True, validate=validate.Length(max=200), load_only=True)
    name = text(80, min_len=1, load_default="API token",
                metadata={"description": "A label for the token, e.g. the client's name."})


class TokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String(metadata={"description": "The first characters, to recognise it by."})
    created_at = fields.AwareDateTime()
    last_used_at = fields.AwareDateTime(allow_none=True)


class NewTokenSchema(TokenSchema):
    token = fields.String(metadata={"description": "Shown only now; store it safely."})


DISTANCE_UNITS = ("km", "mi")
_UNIT = ("How distances are written for you: 'km' or 'mi'; null: from your locale (US, GB, LR "
         "and MM: miles, elsewhere kilometres). The API always speaks kilometres.")


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    name = fields.String()
    phone = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    verified_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When the address was confirmed by the link "
                                   "mailed to it; until then your ratings do not count toward "
                                   "reputation."})
    distance_unit = fields.String(allow_none=True, metadata={"description": _UNIT})


class MeUpdateSchema(Schema):
    name = text(100, min_len=1)
    phone = text(40, allow_none=True)
    distance_unit = fields.String(allow_none=True, validate=validate.OneOf(DISTANCE_UNITS),
                                  metadata={"description": _UNIT})


class PasswordSchema(Schema):
    """Confirming something irreversible (deleting the account) with the password."""

    password = SafeString(required=True, validate=validate.Length(max=200), load_only=True,
                          metadata={"description": "Your password, to confirm."})


def _new_password(description: str = "The new password (at least 10 characters).") -> SafeString:
    return SafeString(required=True, validate=validate.Length(min=10, max=200), load_only=True,
                      metadata={"description": description})


def _link_token() -> SafeString:
    return SafeString(required=True, validate=validate.Length(min=1, max=100), load_only=True,
                      metadata={"description": "The token from the link in the mail (the part "
                                               "after the last /)."})


class CheckMailSchema(Schema):
    """The answer to what is done by mail; the same whether or not an account has the address."""

    email = fields.String(metadata={"description": "The address the mail went to (if any)."})
    message = fields.String()


class LinkTokenSchema(Schema):
    token = _link_token()


class ResetRequestSchema(Schema):
    email = SafeEmail(required=True, validate=validate.Length(max=254))


class ResetConfirmSchema(Schema):
    token = _link_token()
    password = _new_password()


class PasswordChangeSchema(Schema):
    current_password = SafeString(required=True, validate=validate.Length(max=200),
                                  load_only=True, metadata={"description": "Your password now."})
    password = _new_password()


class EmailChangeSchema(Schema):
    email = SafeEmail(required=True, validate=validate.Length(max=254),
                      metadata={"description": "The new address; a link to confirm it goes there."})
    password = SafeString(required=True, validate=validate.Length(max=200), load_only=True,
                          metadata={"description": "Your password, to confirm."})
