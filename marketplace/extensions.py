"""Bare extension instances; ``create_app`` binds them to an app. Plus ``add_once``, the one
way a write that a unique constraint may refuse is made, and ``limited``, the one way a route
takes a rate limit."""

from collections.abc import Callable
from typing import Any

from flask import current_app, g
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase

from marketplace.errors import Conflict
from marketplace.schemas import ErrorSchema

# Stable constraint names so Alembic can alter them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
talisman = Talisman()  # security headers (app.security_headers)
class MarketplaceApi(Api):
    """Documents the error shape errors.py really sends."""

    ERROR_SCHEMA = ErrorSchema


openapi = MarketplaceApi()  # flask-smorest: registers the JSON blueprints, builds the document
socketio = SocketIO()


def rate_limit_key() -> str:
    """Whose count a request adds to: the signed-in account (an API token's user, ``g.user``,
    or the web session's), else the client's address. Per account, so one person cannot spread
    a sweep over IP addresses; a sweep over many accounts still pays each account's limit."""
    user = g.get("user")
    if user is None and current_user and current_user.is_authenticated:
        user = current_user
    return f"user:{user.id}" if user is not None else f"ip:{get_remote_address()}"


# Storage, headers and the switch come from the app's config (RATELIMIT_*, config.py): memory://
# by default, a Redis URI when several processes must share counts.
limiter = Limiter(key_func=rate_limit_key)


def limited(setting: str, methods: list[str] | None = None) -> Callable[[Any], Any]:
    """Rate-limit a route by the limit named ``setting`` in the app's config (read on every
    request, so tests and deployments may change it), counted per ``rate_limit_key`` and shared
    by every route that names the same setting — a form and its API twin spend one budget.
    Apply it below the route's authentication, so the caller is known. A request over the
    limit is refused with 429 (errors.py) before the view runs, so it changes nothing."""
    return limiter.shared_limit(lambda: current_app.config[setting], scope=setting,
                                methods=methods)


def add_once(row: object, conflict: str) -> None:
    """Add ``row`` in the current transaction and flush it; when a unique constraint refuses
    it (a second offer, a second rating — perhaps from a racing request) roll back and raise
    Conflict(``conflict``)."""
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(conflict) from None
