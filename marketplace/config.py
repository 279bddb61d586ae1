"""Settings. The one place that reads ``os.environ``; everything has a safe default."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


def normalise_database_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_key() -> str:
    """A stable key for the embedded default, kept in instance/ so sessions survive restarts."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    INSTANCE.mkdir(exist_ok=True)
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def mail_settings(url: str | None) -> dict[str, Any]:
    """Flask-Mailman's MAIL_* settings from one ``MAIL_URL``:
    ``smtp://user:password@host:587?tls=1`` (STARTTLS), ``smtps://user:password@host:465``
    (TLS from the start), ``smtp://localhost:25`` (no authentication). Without a URL, mail is
    written to the server's output (Flask-Mailman's console backend), which is what the demo
    uses: the links it would send are printed where ``make run`` runs."""
    if not url:
        return {"MAIL_BACKEND": "console"}
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"MAIL_URL must start with smtp:// or smtps://, not {parts.scheme}://")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    ssl = parts.scheme == "smtps"
    return {
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": parts.hostname or "localhost",
        "MAIL_PORT": parts.port or (465 if ssl else 25),
        "MAIL_USERNAME": unquote(parts.username) if parts.username else None,
        "MAIL_PASSWORD": unquote(parts.password) if parts.password else None,
        "MAIL_USE_SSL": ssl,
        "MAIL_USE_TLS": not ssl and query.get("tls", "0") == "1",
        "MAIL_TIMEOUT": float(query.get("timeout", "10")),
    }


def from_env(**overrides: Any) -> dict[str, Any]:
    """Build the Flask config mapping from the environment, then apply ``overrides``."""
    env = os.environ
    default_db = f"sqlite:///{INSTANCE / 'marketplace.sqlite3'}"
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(env.get("DATABASE_URL", default_db)),
        "REDIS_URL": env.get("REDIS_URL") or None,
        # Seconds a Redis command (a live event's publish, a rate-limit count, the readiness
        # ping) may wait for an answer or a connection: a Redis that hangs -- the host still
        # accepts, nothing answers -- then costs a request this long once, instead of holding
        # it forever. The live subscription keeps its own connection, without this limit.
        "REDIS_SOCKET_TIMEOUT": float(env.get("REDIS_SOCKET_TIMEOUT", "2")),
        # The database unreachable: seconds to wait for a new connection (PostgreSQL), and the
        # Retry-After of the 503 a request then gets (errors.py). A server's connections are
        # tested before use (pool_pre_ping), so the app recovers by itself once it is back.
        "DATABASE_CONNECT_TIMEOUT": int(env.get("DATABASE_CONNECT_TIMEOUT", "5")),
        "UNAVAILABLE_RETRY_AFTER": int(env.get("UNAVAILABLE_RETRY_AFTER", "5")),
        # How long a request with an Idempotency-Key holds its key (api/idempotency.py): longer
        # than any request may run (plus clock skew between servers). A retry within it is told
        # to wait (409 + Retry-After); after it, if the first request's process died, the retry
        # runs the request.
        "IDEMPOTENCY_LEASE_SECONDS": float(env.get("IDEMPOTENCY_LEASE_SECONDS", "30")),
        # Tests only (tests/test_faults_*.py): a named point where the process kills itself
        # (api/idempotency.FAULT_POINTS). Never set it in production.
        "FAULT_INJECT": env.get("FAULT_INJECT") or None,
        # Chosen on purpose, never auto-detected: the server entry point (marketplace.serve,
        # gunicorn.conf.py) sets "gevent"; tests and CLI commands only emit, in "threading".
        "SOCKETIO_ASYNC_MODE": env.get("SOCKETIO_ASYNC_MODE", "threading"),
        "SOCKETIO_CHANNEL": env.get("SOCKETIO_CHANNEL", "marketplace-socketio"),
        "CORS_ORIGINS": [o for o in env.get("CORS_ORIGINS", "").split(",") if o],
        "GEOCODER": env.get("GEOCODER", "gazetteer"),
        "NOMINATIM_USER_AGENT": env.get("NOMINATIM_USER_AGENT", "nearby-marketplace/0.1"),
        "NOMINATIM_DOMAIN": env.get("NOMINATIM_DOMAIN", "nominatim.openstreetmap.org"),
        "NOMINATIM_SCHEME": env.get("NOMINATIM_SCHEME", "https"),
        # The map's tiles (static/map.js, Leaflet): any XYZ tile server; the CSP's img-src
        # allows this URL's origin. Shapes are drawn whether or not tiles load.
        "MAP_TILE_URL": env.get("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"),
        "MAP_ATTRIBUTION": env.get(
            "MAP_ATTRIBUTION",
            '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
            "contributors"),
        "MAP_MAX_ZOOM": int(env.get("MAP_MAX_ZOOM", "19")),
        "EXPIRY_INTERVAL_SECONDS": float(env.get("EXPIRY_INTERVAL_SECONDS", "30")),
        # checked where the engine is set up (app.register_extensions), overrides included
        "SQLITE_SYNCHRONOUS": env.get("SQLITE_SYNCHRONOUS", "NORMAL"),
        "SECRET_KEY": overrides.pop("SECRET_KEY", None) or _secret_key(),
        "NEED_DEFAULT_TTL_HOURS": int(env.get("NEED_DEFAULT_TTL_HOURS", "48")),
        # Regions whose national phone formats are hidden from providers before acceptance
        # (marketplace/contact.py); numbers written with +country code are found in any case.
        "PHONE_REGIONS": env.get("PHONE_REGIONS", "US"),
        "RATING_PRIOR_WEIGHT": float(env.get("RATING_PRIOR_WEIGHT", "5")),
        # How long a process keeps the platform's mean rating, the score's prior, before
        # reading it again (offers.reputation.platform_mean); 0: read on every score.
        "RATING_MEAN_SECONDS": float(env.get("RATING_MEAN_SECONDS", "60")),
        # "People like you" scores show only once this many such customers rated the provider
        # (offers.reputation.like_you; docs/api.md, "People like you").
        "LIKE_YOU_MIN_CUSTOMERS": int(env.get("LIKE_YOU_MIN_CUSTOMERS", "3")),
        # argon2 runs in gevent's thread pool under the server; 1 keeps it on the event loop
        # (only bench/signin.py's baseline wants that).
        "PASSWORD_HASH_INLINE": env.get("PASSWORD_HASH_INLINE", "0") == "1",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Served over HTTPS (directly or behind a TLS-terminating proxy that sets
        # X-Forwarded-Proto): plain HTTP is redirected, HSTS is sent, cookies are Secure.
        "HTTPS": env.get("HTTPS", "0") == "1",
        "SESSION_COOKIE_SECURE": env.get("SESSION_COOKIE_SECURE", env.get("HTTPS", "0")) == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        # How long a web sign-in lasts on the server: without "remember me" a day, with it 30
        # days (its cookie as long); signing out ends it sooner (accounts.sessions).
        "WEB_SESSION_LIFETIME": timedelta(hours=float(env.get("WEB_SESSION_HOURS", "24"))),
        "REMEMBER_COOKIE_DURATION": timedelta(days=float(env.get("REMEMBER_DAYS", "30"))),
        # Live connections: at most this many Socket.IO connections per user at once; each
        # server process vouches for its own every LIVE_HEARTBEAT_SECONDS.
        "LIVE_CONNECTIONS_PER_USER": int(env.get("LIVE_CONNECTIONS_PER_USER", "10")),
        "LIVE_HEARTBEAT_SECONDS": float(env.get("LIVE_HEARTBEAT_SECONDS", "60")),
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "MAX_CONTENT_LENGTH": 256 * 1024,
        # Uploaded images (avatars, photos on needs; marketplace/media): the largest file taken
        # (MB; the upload routes alone take bodies this large), the largest picture (megapixels,
        # read from the header before decoding) and how many photos one need may carry.
        "MEDIA_MAX_MB": float(env.get("MEDIA_MAX_MB", "8")),
        "MEDIA_MAX_MEGAPIXELS": float(env.get("MEDIA_MAX_MEGAPIXELS", "40")),
        "NEED_PHOTOS_MAX": int(env.get("NEED_PHOTOS_MAX", "6")),
        # flask-smorest / OpenAPI
        "API_TITLE": "Marketplace API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},  # never call validator.swagger.io
        "JSON_SORT_KEYS": False,
        # Compression (Flask-Compress) of what browsers load: pages, CSS, JS, SVG, the
        # manifest -- by the request's Accept-Encoding (zstd, br, gzip). Not the JSON API:
        # its ETags are revisions that clients send back in If-Match, and a compressed
        # response's ETag would carry a suffix.
        "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript",
                               "application/javascript", "image/svg+xml",
                               "application/manifest+json"],
        "COMPRESS_REGISTER": env.get("COMPRESS", "1") == "1",  # 0: a front proxy compresses
        # Account mail (marketplace/mail.py): MAIL_URL picks the SMTP server (mail_settings);
        # PUBLIC_URL is where the links in mail point -- never the request's Host header, which
        # whoever asks for a password reset could set to their own site.
        "MAIL_URL": env.get("MAIL_URL") or None,
        "MAIL_DEFAULT_SENDER": env.get("MAIL_FROM", "Nearby <no-reply@nearby.invalid>"),
        "PUBLIC_URL": env.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/"),
        "VERIFY_EMAIL_HOURS": float(env.get("VERIFY_EMAIL_HOURS", "48")),
        "PASSWORD_RESET_MINUTES": float(env.get("PASSWORD_RESET_MINUTES", "60")),
        # E-mail alerts (marketplace/alerts): a provider who opted in and is not online gets at
        # most one mail per ALERTS_INTERVAL_SECONDS listing the needs matched meanwhile; a
        # sender holds a provider's batch for ALERTS_LEASE_SECONDS (longer than one SMTP send
        # may take) before another process may take it over; unsubscribe links in the mail
        # work for ALERTS_UNSUBSCRIBE_DAYS. The server looks for due alerts every
        # ALERTS_POLL_SECONDS.
        "ALERTS_POLL_SECONDS": float(env.get("ALERTS_POLL_SECONDS", "30")),
        "ALERTS_INTERVAL_SECONDS": float(env.get("ALERTS_INTERVAL_SECONDS", "300")),
        "ALERTS_LEASE_SECONDS": float(env.get("ALERTS_LEASE_SECONDS", "120")),
        "ALERTS_UNSUBSCRIBE_DAYS": float(env.get("ALERTS_UNSUBSCRIBE_DAYS", "90")),
        # Rate limits (Flask-Limiter; extensions.limited): storage memory:// for one process, a
        # Redis URI (redis://host:6379/1) so several processes share counts. Limits are
        # "N per minute|hour|day", several joined by ";", counted per account (IP if anonymous).
        "RATELIMIT_ENABLED": env.get("RATELIMIT_ENABLED", "1") == "1",
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "marketplace"),
        "RATELIMIT_HEADERS_ENABLED": True,  # X-RateLimit-* on limited routes, Retry-After on 429
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,  # Redis down: count per process, not 500
        # Moving one's base or radius (PUT /api/v1/me/provider, the provider form): every save.
        "RATE_LIMIT_PLACE_CHANGES": env.get("RATE_LIMIT_PLACE_CHANGES", "10 per hour;30 per day"),
        # Reading needs by place: the feed (API and page), a need by id.
        "RATE_LIMIT_LOCATION_READS": env.get("RATE_LIMIT_LOCATION_READS",
                                             "120 per minute;1200 per hour"),
        # The post-need form's reach preview (a count of providers near any point).
        "RATE_LIMIT_REACH_PREVIEWS": env.get("RATE_LIMIT_REACH_PREVIEWS",
                                             "30 per minute;200 per hour"),
        # Guessing (extensions.attempts_limited; docs/api.md, "Rate limits"): each per account
        # tried (the email, hashed) and per client address (_PER_IP), every window at once.
        # Sign-in (POST /signin, POST /api/v1/tokens): per account only FAILED attempts count.
        "RATE_LIMIT_SIGNIN": env.get("RATE_LIMIT_SIGNIN", "5 per minute;20 per hour;50 per day"),
        "RATE_LIMIT_SIGNIN_PER_IP": env.get("RATE_LIMIT_SIGNIN_PER_IP",
                                            "20 per minute;100 per hour;500 per day"),
        # Registration (POST /signup, POST /api/v1/users): every attempt counts.
        "RATE_LIMIT_SIGNUP": env.get("RATE_LIMIT_SIGNUP", "3 per hour;10 per day"),
        "RATE_LIMIT_SIGNUP_PER_IP": env.get("RATE_LIMIT_SIGNUP_PER_IP", "10 per hour;50 per day"),
        # Password reset requests (/forgot, POST /api/v1/password-reset): every attempt counts.
        "RATE_LIMIT_PASSWORD_RESET": env.get("RATE_LIMIT_PASSWORD_RESET", "3 per hour;10 per day"),
        "RATE_LIMIT_PASSWORD_RESET_PER_IP": env.get("RATE_LIMIT_PASSWORD_RESET_PER_IP",
                                                    "10 per hour;50 per day"),
        # Posting, per account, the API and the form one budget: needs; offers made or revised;
        # messages.
        "RATE_LIMIT_NEEDS": env.get("RATE_LIMIT_NEEDS", "10 per hour;50 per day"),
        "RATE_LIMIT_OFFERS": env.get("RATE_LIMIT_OFFERS", "30 per hour;200 per day"),
        "RATE_LIMIT_MESSAGES": env.get("RATE_LIMIT_MESSAGES", "20 per minute;300 per hour"),
        # Image uploads (avatars and need photos, API and forms): each one decodes an image.
        "RATE_LIMIT_UPLOADS": env.get("RATE_LIMIT_UPLOADS", "20 per hour;100 per day"),
        "RATE_LIMIT_REPORTS": env.get("RATE_LIMIT_REPORTS", "10 per hour;50 per day"),
        # @mentions in needs: each provider a need is sent to by handle spends one.
        "RATE_LIMIT_MENTIONS": env.get("RATE_LIMIT_MENTIONS", "20 per hour;60 per day"),
        # Trends (GET /api/v1/trends and the trends page, which polls it): aggregates by place.
        "RATE_LIMIT_TRENDS": env.get("RATE_LIMIT_TRENDS", "30 per minute;600 per hour"),
        # Trends show a tag only where at least this many distinct customers used it (per
        # 0.1-degree trend tile, in the window): docs/api.md, "Trends".
        "TRENDS_MIN_CUSTOMERS": int(env.get("TRENDS_MIN_CUSTOMERS", "3")),
        # How often the trends page re-reads itself (static/trends.js), seconds.
        "TRENDS_REFRESH_SECONDS": int(env.get("TRENDS_REFRESH_SECONDS", "30")),
        # Socket.IO events per connection: replay (catching up) page requests.
        "RATE_LIMIT_REPLAYS": env.get("RATE_LIMIT_REPLAYS", "30 per minute"),
        # Behind N reverse proxies that set X-Forwarded-For/-Proto/-Host (docs/deploy.md):
        # werkzeug's ProxyFix trusts that many hops, so per-IP limits see the client. 0: off.
        "PROXY_HOPS": int(env.get("PROXY_HOPS", "0")),
        # Webhooks (docs/api.md, "Webhooks"): seconds between retries of a failed delivery
        # (each +-20% jitter; after the last the delivery has failed), the lease a worker holds
        # a delivery under, attempts in parallel per process, limits on each request, and how
        # many failed deliveries in a row disable a webhook. Plain http:// and private or
        # loopback addresses only for tests and closed networks.
        "WEBHOOKS_RETRY_SCHEDULE": env.get("WEBHOOKS_RETRY_SCHEDULE",
                                           "10,60,300,1800,7200,21600"),
        "WEBHOOKS_LEASE_SECONDS": float(env.get("WEBHOOKS_LEASE_SECONDS", "60")),
        "WEBHOOKS_CONCURRENCY": int(env.get("WEBHOOKS_CONCURRENCY", "4")),
        "WEBHOOKS_TIMEOUT_SECONDS": float(env.get("WEBHOOKS_TIMEOUT_SECONDS", "10")),
        "WEBHOOKS_RESPONSE_MAX_BYTES": int(env.get("WEBHOOKS_RESPONSE_MAX_BYTES", "4096")),
        "WEBHOOKS_DISABLE_AFTER": int(env.get("WEBHOOKS_DISABLE_AFTER", "5")),
        "WEBHOOKS_INTERVAL_SECONDS": float(env.get("WEBHOOKS_INTERVAL_SECONDS", "5")),
        "WEBHOOKS_ALLOW_HTTP": env.get("WEBHOOKS_ALLOW_HTTP", "0") == "1",
        "WEBHOOKS_ALLOW_PRIVATE": env.get("WEBHOOKS_ALLOW_PRIVATE", "0") == "1",
        # After a secret rotation the previous secret also signs deliveries this long.
        "WEBHOOKS_SECRET_OVERLAP_SECONDS": float(env.get("WEBHOOKS_SECRET_OVERLAP_SECONDS",
                                                         "86400")),
        "RATE_LIMIT_WEBHOOKS": env.get("RATE_LIMIT_WEBHOOKS", "10 per hour;30 per day"),
    }
    config.update(overrides)
    config.update(mail_settings(config["MAIL_URL"]))
    config.setdefault("REMEMBER_COOKIE_SECURE", config["SESSION_COOKIE_SECURE"])
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(config["SQLALCHEMY_DATABASE_URI"])
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(config))
    config.setdefault("RATELIMIT_STORAGE_OPTIONS", redis_timeouts(config))
    return config


def redis_timeouts(config: dict[str, Any]) -> dict[str, float]:
    """The redis-py client options that bound a command and a connection attempt
    (REDIS_SOCKET_TIMEOUT), for every Redis client of the app but the live subscription."""
    seconds = config["REDIS_SOCKET_TIMEOUT"]
    return {"socket_timeout": seconds, "socket_connect_timeout": seconds}


def engine_options(config: dict[str, Any]) -> dict[str, Any]:
    """A database server's pooled connections are tested before a request uses one (a restart
    of the server leaves them dead; the next request then gets a new one, not an error), and
    a new PostgreSQL connection gives up after DATABASE_CONNECT_TIMEOUT seconds. An SQLite
    file's connections are in this process and cannot be cut off, so they are not tested:
    the test was one more statement on every request."""
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return {}
    options: dict[str, Any] = {"pool_pre_ping": True}
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": config["DATABASE_CONNECT_TIMEOUT"]}
    return options


SQLITE_SYNCHRONOUS = ("NORMAL", "FULL", "EXTRA")


def sqlite_synchronous(value: str) -> str:
    """SQLite's ``PRAGMA synchronous`` for the app's connections (docs/deploy.md)."""
    if value.strip().upper() not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS)}, "
                         f"not {value!r}")
    return value.strip().upper()
