"""Bare extension instances; ``create_app`` binds them to an app. Plus ``add_once``, the one
way a write that a unique constraint may refuse is made."""

from flask_login import LoginManager
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
