"""The application factory; reads as a table of contents."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import Flask, Response, current_app, g, has_request_context, jsonify, request
from sqlalchemy import event, text
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from marketplace import cli, errors, mail, realtime
from marketplace.alerts import services as alerts
from marketplace.config import ROOT, from_env, redis_timeouts, sqlite_synchronous
from marketplace.extensions import (
    compress,
    csrf,
    db,
    init_limiter,
    limiter,
    login_manager,
    migrate,
    openapi,
    rate_limit_headers,
    talisman,
)
from marketplace.media import http as uploads
from marketplace.notifications import outbox
from marketplace.webhooks import services as webhooks


class App(Flask):
    """Flask, asking once per function whether it is a coroutine function. Flask asks it of
    every hook and view on every request (``ensure_sync``: ~20 functions here, ~1 us each
    in ``inspect``), and the answer never changes. The first ``SYNC_MEMO`` functions asked
    about are remembered: the app's hooks and views, met on its first requests; a function
    made for one request (``after_this_request``) may take a place, never more than that."""

    SYNC_MEMO = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._as_sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        found = self._as_sync.get(func)
        if found is None:
            found = super().ensure_sync(func)
            if len(self._as_sync) < self.SYNC_MEMO:
                self._as_sync[func] = found
        return found


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = App(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.update(from_env(**(config or {})))
    app.url_map.converters["int"] = DatabaseId
    errors.keep_own_retry_after(app)  # before the limiter's headers (it must run after them)
    request_ids(app)
    register_extensions(app)
    register_blueprints(app)
    register_health_checks(app)
    register_errorhandlers(app)
    register_commands(app)
    trust_proxies(app)
    return app


#: A request id a client may choose (echoed back); anything else is replaced by one of ours.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
LOG_FORMAT = "[%(asctime)s] %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def request_ids(app: Flask) -> None:
    """Every response carries ``X-Request-Id``: the client's, if it sent a sane one, else a
    new one; the app's log lines name it (the ``marketplace`` loggers' handler)."""

    @app.before_request
    def take() -> None:
        sent = request.headers.get("X-Request-Id", "")
        g.request_id = sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex

    @app.after_request
    def echo(response: Response) -> Response:
        if "request_id" not in g:  # refused before ``take`` ran
            g.request_id = uuid.uuid4().hex
        response.headers["X-Request-Id"] = g.request_id
        return response

    logger = logging.getLogger("marketplace")
    if not any(isinstance(f, RequestIdFilter) for h in logger.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)


def trust_proxies(app: Flask) -> None:
    """Behind ``PROXY_HOPS`` reverse proxies, the client's address, scheme and host are the
    ones the proxies forwarded (werkzeug's ProxyFix, trusting that many X-Forwarded-* hops and
    no more): per-IP rate limits then count the client, not the proxy. Off (0) by default, as
    a client reaching the app directly could otherwise forge X-Forwarded-For."""
    hops = int(app.config.get("PROXY_HOPS") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


class DatabaseId(IntegerConverter):
    """``<int:...>`` in every route: ids beyond a database integer are simply not found (404)
    instead of overflowing the driver. More than 10 digits matches no route; a 10-digit id
    beyond the largest matches as id 0, which no row has (refusing the match there would make
    werkzeug answer 405 where the same path has a route for another method)."""

    regex = r"\d{1,10}"

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)  # the OpenAPI document shows it
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if self.max is None or number <= self.max else 0


def whole_static_files(app: Flask) -> None:
    """A static file is read whole before Flask-Compress sees it (it runs after this): a file
    streamed from disk would be compressed as a stream, chunk by chunk, without gzip and
    without a Content-Length. Our files are small (the largest, a vendored library, is some
    hundreds of KB) and the compressed copy is what goes out."""

    @app.after_request
    def read_whole(response: Response) -> Response:
        if (request.endpoint == "static" and response.status_code == 200
                and response.mimetype in compress.compress_mimetypes_set):
            response.direct_passthrough = False
            close = getattr(response.response, "close", None)
            body = b"".join(response.iter_encoded())
            if close is not None:
                close()  # the file, now rather than when the server closes the response
            response.set_data(body)
        return response


def register_extensions(app: Flask) -> None:
    compress.init_app(app)  # first registered, so its after_request runs last, on the final body
    whole_static_files(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True,
                     compare_type=True)
    login_manager.init_app(app)
    uploads.register(app)  # before CSRF reads a form: upload routes take larger bodies
    csrf.init_app(app)
    init_limiter(app)
    rate_limit_headers(app)
    mail.init_app(app)
    app.config.setdefault("API_SPEC_OPTIONS", {
        "info": {"description": "Customers post needs; nearby providers answer with offers. "
                 "Authenticate with `Authorization: Bearer <token>` from POST /api/v1/tokens."},
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    })
    openapi.init_app(app)
    realtime.init_app(app)
    # a matched need is queued for e-mail alerts in the transaction that stores it
    outbox.on_queue(alerts.queue_matched)
    outbox.on_queue(webhooks.owe_deliveries)  # deliveries commit with their notifications
    security_headers(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas(
                sqlite_synchronous(app.config["SQLITE_SYNCHRONOUS"])))


# Scripts only from our origin or carrying this request's nonce (the inline scripts are the
# line in base.html that marks scripts as running, and the API explorer's configuration); no
# inline styles or handlers anywhere; nothing may frame a page.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",  # the API, and Socket.IO's WebSocket on the same origin
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def tile_origin(tile_url: str) -> str:
    """The CSP source of a tile URL template: its scheme and host (``{s}`` subdomains as
    ``*``), so the map's images may come from there and from nowhere else."""
    parts = urlsplit(tile_url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(config: Mapping[str, Any]) -> dict[str, str]:
    origin = tile_origin(config["MAP_TILE_URL"])
    return {**CONTENT_SECURITY_POLICY,
            "img-src": " ".join(filter(None, (CONTENT_SECURITY_POLICY["img-src"], origin)))}


def security_headers(app: Flask) -> None:
    """Talisman sets the CSP (with a nonce per request), X-Frame-Options DENY, nosniff,
    Referrer-Policy, and -- when ``HTTPS`` is configured -- HSTS and the redirect from plain
    HTTP. Nothing the app sends is meant for a shared cache: every response except static
    files is ``Cache-Control: no-store`` (pages are per person; some carry a new token)."""
    https = bool(app.config["HTTPS"])
    talisman.init_app(
        app,
        force_https=https,
        strict_transport_security=https,
        session_cookie_secure=bool(app.config["SESSION_COOKIE_SECURE"]),
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
        frame_options="DENY",
        content_security_policy=content_security_policy(app.config),
        content_security_policy_nonce_in=["script-src"],
        referrer_policy="strict-origin-when-cross-origin",
    )

    @app.after_request
    def no_store(response: Response) -> Response:
        if request.endpoint != "static" and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response


def _sqlite_pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    """The listener for each new SQLite connection: foreign keys on; WAL so readers do not
    block the writer; wait rather than fail on locks; ``synchronous`` (``SQLITE_SYNCHRONOUS``),
    NORMAL by default, which in WAL mode never corrupts and loses nothing when the process
    dies, only the last commits if the machine itself loses power; it saves a commit its
    fsync (docs/deploy.md). FULL keeps those too."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    return on_connect


def register_blueprints(app: Flask) -> None:
    from marketplace import api, web

    api.register(app)
    web.register(app)


def register_health_checks(app: Flask) -> None:
    """For a load balancer (docs/deploy.md): ``/healthz`` -- the process answers, nothing else
    is asked; ``/readyz`` -- it can serve: the database answers ``SELECT 1`` and, when
    REDIS_URL is set, Redis answers PING (200, or 503 naming what failed). Plain routes: not in
    the API's OpenAPI document, no rate limit, no session or cookie, and over plain HTTP even
    when HTTPS is configured (a balancer probes the instance directly)."""

    def healthz() -> Response:
        return jsonify(status="ok")

    def readyz() -> Response:
        checks = {"database": _check(_ping_database)}
        if app.config.get("REDIS_URL"):
            checks["redis"] = _check(_ping_redis)
        ready = all(check["ok"] for check in checks.values())
        response = jsonify(status="ready" if ready else "unavailable", checks=checks)
        response.status_code = 200 if ready else 503
        if not ready:
            response.headers["Retry-After"] = str(app.config.get("UNAVAILABLE_RETRY_AFTER", 5))
        return response

    for view in (healthz, readyz):
        app.add_url_rule(f"/{view.__name__}", view.__name__, talisman(force_https=False)(view),
                         methods=["GET"])
        limiter.exempt(app.view_functions[view.__name__])


def _check(probe: Any) -> dict[str, Any]:
    try:
        probe()
    except Exception as exc:  # noqa: BLE001  (reported in the answer, never raised)
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True}


def _ping_database() -> None:
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_redis() -> None:
    client = redis.Redis.from_url(current_app.config["REDIS_URL"],
                                  **redis_timeouts(current_app.config))
    try:
        client.ping()
    finally:
        client.close()


def register_errorhandlers(app: Flask) -> None:
    errors.init_app(app)


def register_commands(app: Flask) -> None:
    cli.init_app(app)

