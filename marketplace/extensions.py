"""Bare extension instances; ``create_app`` binds them to an app. Plus ``add_once``, the one
way a write that a unique constraint may refuse is made, and ``limited``, the one way a route
takes a rate limit."""

import functools
import hashlib
import hmac
import ipaddress
import threading
import time
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from flask import Flask, Response, current_app, g, request
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf import CSRFProtect
from limits import parse_many
from limits.storage import MemoryStorage
from sqlalchemy import Executable, MetaData, Result
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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
compress = Compress()  # response compression for pages and assets (config COMPRESS_*)
class MarketplaceApi(Api):
    """flask-smorest's Api, documenting the error shape errors.py really sends, with a
    finishing pass over the document (``finisher``: ``marketplace.api.document.finish``, set
    when the API registers) so every reader of it — /api/v1/openapi.json and
    ``flask openapi print`` alike — gets the finished one."""

    ERROR_SCHEMA = ErrorSchema
    finisher: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def _init_spec(self, **kwargs: Any) -> None:
        super()._init_spec(**kwargs)  # type: ignore[misc]
        self.spec.__class__ = _FinishedSpec
        self.spec.api = self  # type: ignore[attr-defined]


class _FinishedSpec(APISpec):
    api: MarketplaceApi

    def to_dict(self) -> dict[str, Any]:
        doc = super().to_dict()
        finish = self.api.finisher
        return finish(doc) if finish is not None else doc


#: The headers of a limited route's responses (docs/api.md, "Rate limits"), as the OpenAPI
#: document describes them on the 429.
RATE_LIMIT_HEADERS = (
    ("Retry-After", "integer", "Seconds until a request here may succeed again."),
    ("RateLimit-Limit", "integer", "Requests allowed in the nearest window (the first to run "
     "out; on a 429, the one that did)."),
    ("RateLimit-Remaining", "integer", "Requests left in that window (0 on a 429)."),
    ("RateLimit-Reset", "integer", "Seconds until that window resets."),
    ("RateLimit-Policy", "string", "Every window of the limits here, as `amount;w=seconds`, "
     "comma-separated (IETF draft-ietf-httpapi-ratelimit-headers)."),
    ("X-RateLimit-Limit", "integer", "As RateLimit-Limit (Flask-Limiter's name)."),
    ("X-RateLimit-Remaining", "integer", "As RateLimit-Remaining."),
    ("X-RateLimit-Reset", "integer", "When that window resets, as a Unix time."),
)


openapi = MarketplaceApi()  # flask-smorest: registers the JSON blueprints, builds the document
socketio = SocketIO()


def rate_limit_key() -> str:
    """Whose count a request adds to: the signed-in account (an API token's user, ``g.user``,
    or the web session's), else the client's address. Per account, so one person cannot spread
    a sweep over IP addresses; a sweep over many accounts still pays each account's limit."""
    user = g.get("user")
    if user is None and current_user and current_user.is_authenticated:
        user = current_user
    return f"user:{user.id}" if user is not None else client_address_key()


# Storage, headers and the switch come from the app's config (RATELIMIT_*, config.py): memory://
# by default (``InlineMemoryStorage``, see ``init_limiter``), a Redis URI when several processes
# must share counts.
limiter = Limiter(key_func=rate_limit_key)


class InlineMemoryStorage(MemoryStorage):
    """What ``memory://`` means here: limits' counts in this process, without the timer thread
    limits starts to sweep them. limits starts that thread again on the first count after the
    last one has run out (10 ms), and asks on every count whether it is still alive. Under the
    gevent server both switch to the event loop (a thread there is a greenlet, and gevent's
    ``is_alive`` yields), so every rate-limited request stopped in the middle of its view while
    holding its database connection; under load the pool ran out, requests queued for it and
    new connections were opened (docs/performance.md, "The rate limiter's timer thread").

    Nothing is lost by sweeping here instead: a count whose window is over is dropped when it
    is next read (limits' own ``get``); what is never read again is swept inline, on a count,
    at most once every ``SWEEP_SECONDS``."""

    STORAGE_SCHEME = ["inline-memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._swept = time.monotonic()
        self._sweeping = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - limits' private hook
        now = time.monotonic()
        if now - self._swept < self.SWEEP_SECONDS or not self._sweeping.acquire(blocking=False):
            return
        try:
            self._swept = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweeping.release()


def init_limiter(app: Flask) -> None:
    """Bind the limiter, ``memory://`` counted by ``InlineMemoryStorage``."""
    if app.config.get("RATELIMIT_STORAGE_URI", "memory://") == "memory://":
        app.config["RATELIMIT_STORAGE_URI"] = "inline-memory://"
    limiter.init_app(app)


def client_address_key() -> str:
    """The client's address (behind a proxy, the one ProxyFix took from X-Forwarded-For when
    PROXY_HOPS says so; docs/deploy.md). An IPv6 address counts as its /64: one subscriber
    usually holds a whole /64, and would otherwise have 2^64 budgets."""
    address = get_remote_address()
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"ip:{address}"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # ::ffff:198.51.100.1 is that IPv4 client
            return f"ip:{parsed.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{parsed}/64', strict=False)}"
    return f"ip:{parsed}"


def tried_email_key() -> str:
    """The account a sign-in, sign-up or reset is trying: the ``email`` of the JSON body or the
    form, normalised as accounts store it (trimmed, lower-case), as an HMAC under the app's
    secret so the limiter storage holds no address. A request naming no email counts per
    address instead (it cannot share one bucket with everyone else's)."""
    try:  # the body is judged later (the view's 400/415/422); here it is only read
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:
        body = None
    email = body.get("email") if isinstance(body, dict) else request.form.get("email")
    if not isinstance(email, str) or not email.strip():
        return f"no-email:{client_address_key()}"
    secret = str(current_app.config["SECRET_KEY"]).encode()
    tried = email.strip().lower().encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, tried, hashlib.sha256).hexdigest()
    return f"email:{digest[:32]}"


def limited(setting: str, methods: list[str] | None = None,
            key: Callable[[], str] | None = None) -> Callable[[Any], Any]:
    """Rate-limit a route by the limit named ``setting`` in the app's config (read on every
    request, so tests and deployments may change it), counted per ``key`` (default
    ``rate_limit_key``) and shared by every route that names the same setting — a form and its
    API twin spend one budget. Apply it below the route's authentication, so the caller is
    known. A request over the limit is refused with 429 (errors.py) before the view runs, so it
    changes nothing. Every request counts, atomically, before the view: a burst of parallel
    requests cannot overshoot the limit."""
    return limiter.shared_limit(lambda: current_app.config[setting], scope=setting,
                                methods=methods, key_func=key)


def attempts_limited(setting: str, methods: list[str] | None = None) -> Callable[[Any], Any]:
    """The guessing limits of sign-in, sign-up and password reset: ``setting`` per account
    tried (``tried_email_key``) and ``setting + "_PER_IP"`` per client address, both counting
    every attempt. A view whose attempt succeeded calls ``forgive(setting)``: the per-account
    count then holds only failures (docs/api.md, "Rate limits")."""

    def decorator(func: Any) -> Any:
        per_account = limited(setting, methods, key=tried_email_key)(func)
        return limited(f"{setting}_PER_IP", methods, key=client_address_key)(per_account)

    return decorator


def forgive(setting: str) -> None:
    """Give back what this request spent of ``setting`` (every window of it): the attempt was
    not a guess (the right password). Counted before the view and given back after, rather than
    counted after a failure, so parallel wrong guesses cannot all pass before any is counted."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return  # nothing was counted
    storage = limiter.limiter.storage
    for spent in limiter.current_limits:
        if spent.request_args and spent.request_args[-1] == setting and storage.get(spent.key):
            storage.incr(spent.key, spent.limit.get_expiry(), amount=-1)


def spend(setting: str, *identity: str) -> bool:
    """Count one event outside a route (a Socket.IO event) against the limit named ``setting``,
    for ``identity``; False when it is over the limit (nothing was counted then)."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return True
    strategy = limiter.limiter
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
    items = sorted(parse_many(current_app.config[setting]))
    for item in items:
        if not strategy.test(item, prefix, setting, *identity):
            return False
    return all([strategy.hit(item, prefix, setting, *identity) for item in items])


@functools.lru_cache(maxsize=256)
def _policy(limits: str) -> tuple[str, ...]:
    """A limit setting's windows as RateLimit-Policy writes them ("5;w=60", "20;w=3600"): a
    pure function of the setting, asked on every limited response."""
    return tuple(f"{item.amount};w={item.get_expiry()}" for item in sorted(parse_many(limits)))


def rate_limit_headers(app: Flask) -> None:
    """The IETF draft's headers (draft-ietf-httpapi-ratelimit-headers) next to Flask-Limiter's
    X-RateLimit-*, on every limited route: ``RateLimit-Limit`` / ``-Remaining`` of the nearest
    limit, ``RateLimit-Reset`` in seconds from now, and ``RateLimit-Policy`` listing every
    window (``5;w=60, 20;w=3600``)."""

    @app.after_request
    def add(response: Response) -> Response:
        if not limiter.enabled:
            return response
        nearest = limiter.current_limit
        if nearest is None:
            return response
        try:
            reset = max(0, int(nearest.reset_at - time.time()))
            response.headers["RateLimit-Limit"] = str(nearest.limit.amount)
            response.headers["RateLimit-Remaining"] = str(max(0, nearest.remaining))
            response.headers["RateLimit-Reset"] = str(reset)
            response.headers["RateLimit-Policy"] = ", ".join(dict.fromkeys(
                window
                for setting in dict.fromkeys(s.request_args[-1] for s in limiter.current_limits)
                for window in _policy(current_app.config[setting])))
        except Exception:  # storage unreachable: the limiter logs it; the response stands
            return response
        return response


def rows(statement: Executable, params: dict[str, Any] | None = None) -> Result[Any]:
    """Run a statement that reads plain columns (no ORM objects) on the session's connection,
    in its transaction, after the flush of pending changes the ORM's own execute would make:
    what ``db.session.execute`` answers, without its per-statement ORM work (some 60 us of
    CPU a statement here, more than SQLite takes to run most of them). For the reads asked on
    most requests (blocks, the feed's, a page's resume point)."""
    session = db.session()
    if session.autoflush:
        session.flush()  # nothing pending: it returns at once
    return session.connection().execute(statement, params)


def upsert() -> Any:
    """The ``insert`` of the session's database with ``on_conflict_do_update`` (PostgreSQL's or
    SQLite's; both write the same ``INSERT ... ON CONFLICT ... DO UPDATE``)."""
    return pg_insert if db.session.connection().dialect.name == "postgresql" else sqlite_insert


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


def commit_as_written() -> None:
    """Commit, leaving what the session holds as this transaction wrote or read it instead of
    expired: for a request that answers with what it has just written (a new need, offer or
    message). Expired by the commit, the answer read every object in it again, a statement
    each (the need, its customer, category, tags...), for values the request had in hand. What
    a statement changed behind the ORM's back (a Core ``UPDATE``) is not in the objects; an
    answer must not show it."""
    session = db.session()
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = True
