"""JSON routes for accounts and tokens (thin: load, act, dump)."""

from typing import Any

from flask import g
from marshmallow import Schema, fields

from marketplace import privacy
from marketplace.accounts import services
from marketplace.accounts.models import User
from marketplace.accounts.schemas import (
    CredentialsSchema,
    MeUpdateSchema,
    NewTokenSchema,
    PasswordSchema,
    RegisterSchema,
    TokenSchema,
    UserSchema,
)
from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.api.idempotency import idempotent
from marketplace.extensions import forgive
from marketplace.providers import services as providers
from marketplace.providers.schemas import ProviderOutSchema


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


@blp.route("/users", methods=["POST"])
@blp.doc(security=[])
@blp.attempts_limited("RATE_LIMIT_SIGNUP")
@idempotent
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
def register(data: dict[str, Any]) -> Any:
    """Create an account."""
    return services.register(data["email"], data["password"], data["name"], data.get("phone"))


@blp.route("/tokens", methods=["POST"])
@blp.doc(security=[])
@blp.attempts_limited("RATE_LIMIT_SIGNIN")
@idempotent
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
@blp.response(200, TokenSchema(many=True))
def list_tokens() -> Any:
    """Your tokens (never their values)."""
    return services.list_tokens(g.user)


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
    """Change your name or phone."""
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
