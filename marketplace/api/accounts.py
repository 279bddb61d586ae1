"""JSON routes for accounts and tokens (thin: load, act, dump)."""

from typing import Any

from flask import g
from marshmallow import fields

from marketplace import privacy
from marketplace.accounts import services
from marketplace.accounts.models import User
from marketplace.accounts.schemas import (
    CheckMailSchema,
    CredentialsSchema,
    EmailChangeSchema,
    LinkTokenSchema,
    MeUpdateSchema,
    NewTokenSchema,
    PasswordChangeSchema,
    PasswordSchema,
    RegisterSchema,
    ResetConfirmSchema,
    ResetRequestSchema,
    TokenSchema,
    UserSchema,
)
from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.extensions import forgive
from marketplace.pagination import OffsetPageArgs, offset_page, page, page_of
from marketplace.providers import services as providers
from marketplace.providers.schemas import ProviderOutSchema
from marketplace.schemas import EmptySchema, Schema


class Me:
    """An account as /me shows it: the user and, if they have one, their provider profile
    (accounts know nothing of providers, so the two meet here)."""

    def __init__(self, user: User) -> None:
        self.user, self.provider = user, providers.provider_of(user)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


class MeSchema(UserSchema):
    """The signed-in account with its provider profile (the one shape that spans both)."""

    provider = fields.Nested(ProviderOutSchema, allow_none=True)


class ExportSchema(Schema):
    """Everything the platform holds about you (docs/api.md, "Your data")."""

    format = fields.String(metadata={"description": f"Always {privacy.FORMAT!r}."})
    exported_at = fields.String(metadata={"description": "When (ISO 8601, UTC)."})
    user_id = fields.Integer()
    tables = fields.Dict(
        keys=fields.String(), values=fields.List(fields.Dict()),
        metadata={"description": "Table name -> its rows about you, each row a column -> value "
                                 "object. Tables: " + "; ".join(
                                     f"{t}: {d}" for t, d in privacy.export_shape())})


blp = Blueprint("accounts_api", __name__, url_prefix="/api/v1", description="Accounts and tokens")


SIGNED_UP = ("If the address is new, your account is made and a link to confirm the address "
             "is on its way; if it has an account already, its owner got a mail about this. "
             "Check your mail.")
RESET_ASKED = ("If an account has this address, a link to choose a new password is on its way. "
               "Check your mail.")
EMAIL_CHANGE_ASKED = ("A link to confirm the new address is on its way to it (unless another "
                      "account uses it); your account keeps its address until the link is opened.")


@blp.route("/users", methods=["POST"])
@blp.doc(security=[])
@blp.attempts_limited("RATE_LIMIT_SIGNUP")
@blp.idempotent
@blp.arguments(RegisterSchema)
@blp.response(202, CheckMailSchema)
def register(data: dict[str, Any]) -> Any:
    """Create an account. The answer is the same whether or not the address has an account
    (a new one gets a link to confirm it, a taken one a note to its owner), so it tells nobody
    who has one. You may sign in at once (POST /tokens); ratings you give count toward
    reputation once the address is confirmed."""
    services.sign_up(data["email"], data["password"], data["name"], data.get("phone"))
    return {"email": data["email"].strip().lower(), "message": SIGNED_UP}


@blp.route("/verification", methods=["POST"])
@blp.doc(security=[])
@blp.arguments(LinkTokenSchema)
@blp.response(200, UserSchema)
def verify(data: dict[str, Any]) -> Any:
    """Confirm an address with the token from the link mailed to it (works once, for 48 hours
    by default; a bad, used or expired token is a 422 naming ``token``)."""
    return services.verify_email(data["token"])


@blp.route("/me/verification", methods=["POST"])
@auth_required
@blp.arguments(EmptySchema, required=False)
@blp.response(202, CheckMailSchema)
def resend_verification(_body: dict[str, Any]) -> Any:
    """Mail a new link to confirm your address (earlier links stop working); nothing is sent
    when it is confirmed already (see ``verified_at`` in GET /me)."""
    sent = services.send_verification(g.user)
    return {"email": g.user.email, "message": "A new link is on its way; check your mail."
            if sent else "Your address is confirmed already."}


@blp.route("/password-reset", methods=["POST"])
@blp.doc(security=[])
@blp.attempts_limited("RATE_LIMIT_PASSWORD_RESET")
@blp.arguments(ResetRequestSchema)
@blp.response(202, CheckMailSchema)
def request_password_reset(data: dict[str, Any]) -> Any:
    """Ask for a link to choose a new password. The answer is the same whether or not an
    account has the address."""
    services.request_password_reset(data["email"])
    return {"email": data["email"].strip().lower(), "message": RESET_ASKED}


@blp.route("/password-reset/confirm", methods=["POST"])
@blp.doc(security=[])
@blp.attempts_limited("RATE_LIMIT_PASSWORD_RESET")
@blp.arguments(ResetConfirmSchema)
@blp.response(204)
def confirm_password_reset(data: dict[str, Any]) -> None:
    """Set a new password with the token from the reset link (works once, for an hour; a bad,
    used or expired token is a 422 naming ``token``). Every web session of the account ends;
    API tokens keep working, unless the address was never confirmed."""
    services.reset_password(data["token"], data["password"])


@blp.route("/me/password", methods=["POST"])
@auth_required
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
def change_password(data: dict[str, Any]) -> None:
    """Change your password, confirmed by the current one (403 naming ``current_password``).
    Every web session of the account ends; API tokens keep working."""
    services.change_password(g.user, data["current_password"], data["password"], keep=None)


@blp.route("/me/email", methods=["POST"])
@auth_required
@blp.arguments(EmailChangeSchema)
@blp.response(202, CheckMailSchema)
def change_email(data: dict[str, Any]) -> Any:
    """Move your account to a new address, confirmed by your password (403 naming
    ``password``): a link goes to the new address and makes the change when opened (POST
    /email-change/confirm); the old address is told."""
    services.change_email(g.user, data["password"], data["email"])
    return {"email": data["email"].strip().lower(), "message": EMAIL_CHANGE_ASKED}


@blp.route("/email-change/confirm", methods=["POST"])
@blp.doc(security=[])
@blp.arguments(LinkTokenSchema)
@blp.response(200, UserSchema)
def confirm_email_change(data: dict[str, Any]) -> Any:
    """Make the change of address with the token from the link mailed to the new address
    (works once, for 48 hours; 422 naming ``token`` when bad, used, expired or the address was
    taken since)."""
    return services.confirm_email_change(data["token"])


@blp.route("/tokens", methods=["POST"])
@blp.doc(security=[])
@blp.attempts_limited("RATE_LIMIT_SIGNIN")
@blp.idempotent
@blp.arguments(CredentialsSchema)
@blp.response(201, NewTokenSchema)
def create_token_with_password(data: dict[str, Any]) -> Any:
    """Exchange email and password for a personal API token (shown once)."""
    user = services.authenticate(data["email"], data["password"])
    forgive("RATE_LIMIT_SIGNIN")  # the right password is not a guess: only failures count
    token, raw = services.create_token(user, data["name"])
    return _with_value(token, raw)


@blp.route("/tokens", methods=["GET"])
@auth_required
@blp.arguments(OffsetPageArgs, location="query")
@blp.response(200, page_of(TokenSchema))
def list_tokens(args: dict[str, Any]) -> Any:
    """Your tokens (never their values)."""
    return page(*offset_page(list(services.list_tokens(g.user)), args["cursor"], args["limit"]))


@blp.route("/tokens/<int:token_id>", methods=["DELETE"])
@auth_required
@blp.response(204)
def revoke_token(token_id: int) -> None:
    """Revoke a token; it stops working at once."""
    services.revoke_token(g.user, token_id)


@blp.route("/me", methods=["GET"])
@auth_required
@blp.response(200, MeSchema)
def me() -> Any:
    """The signed-in account, with its provider profile if it has one."""
    return Me(g.user)


@blp.route("/me", methods=["PATCH"])
@auth_required
@blp.arguments(MeUpdateSchema, required=False)
@blp.response(200, MeSchema)
def update_me(data: dict[str, Any]) -> Any:
    """Change your name, phone or the unit distances are written in."""
    services.update_profile(g.user, data)
    return Me(g.user)


@blp.route("/me/export", methods=["GET"])
@auth_required
@blp.response(200, ExportSchema)
def export_me() -> Any:
    """Everything the platform holds about you, as one JSON document."""
    return privacy.export(g.user)


@blp.route("/me", methods=["DELETE"])
@auth_required
@blp.arguments(PasswordSchema)
@blp.response(204)
def erase_me(data: dict[str, Any]) -> None:
    """Delete your account: your personal data is erased, your tokens and sessions stop
    working, open needs are cancelled and pending offers withdrawn. Confirm with your password."""
    privacy.erase(g.user, data["password"])


def _with_value(token: Any, raw: str) -> dict[str, Any]:
    fields = ("id", "name", "prefix", "created_at", "last_used_at")
    return {**{f: getattr(token, f) for f in fields}, "token": raw}
