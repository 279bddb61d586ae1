"""The application factory; reads as a table of contents."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import event
from werkzeug.routing import IntegerConverter

from marketplace import cli, errors, realtime
from marketplace.config import ROOT, from_env
from marketplace.extensions import csrf, db, limiter, login_manager, migrate, openapi


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.update(from_env(**(config or {})))
    app.url_map.converters["int"] = DatabaseId
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


class DatabaseId(IntegerConverter):
    """``<int:...>`` in every route: ids beyond a database integer are simply not found
    (404) instead of overflowing the driver."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True,
                     compare_type=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "Customers post needs; nearby providers answer with offers. "
                 "Authenticate with `Authorization: Bearer <token>` from POST /api/v1/tokens."},
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    })
    openapi.init_app(app)
    realtime.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys on; WAL so readers do not block the writer; wait rather than fail on locks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def register_blueprints(app: Flask) -> None:
    from marketplace import api, web

    api.register(app)
    web.register(app)


def register_errorhandlers(app: Flask) -> None:
    errors.init_app(app)


def register_commands(app: Flask) -> None:
    cli.init_app(app)

