"""Domain errors and the one error shape every API response uses.

``{"error": {"status": 409, "code": "conflict", "message": "...", "fields": {...}}}`` —
``fields`` appears when input was at fault and names each bad field.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, abort, current_app, g, jsonify, render_template, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

#: WSGI environ key set by the server's handler (``wsgi_server.py``) when the server refused a
#: request before the app ran (URL too long, malformed): the app only renders that refusal.
SERVER_REFUSAL = "marketplace.server_refusal"


class DomainError(Exception):
    """A rule of the product said no. Services raise these; the edges turn them into responses."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.headers = headers  # sent with the error (e.g. Retry-After)


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class PreconditionFailed(DomainError):
    """An ``If-Match`` that names a version no longer current (RFC 9110 §13.1.1)."""
    status, code = 412, "precondition_failed"


class Invalid(DomainError):
    status, code = 422, "validation_error"


class UnsupportedMediaType(DomainError):
    status, code = 415, "unsupported_media_type"


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "request_header_fields_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


def _flatten_locations(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests errors by location (json, query, headers); clients want field names."""
    fields: dict[str, Any] = {}
    for location, errors in messages.items():
        if isinstance(errors, dict):
            fields.update(errors)
        else:
            fields[location] = errors
    return fields


def _describe(fields: dict[str, Any], prefix: str = "") -> list[str]:
    names: list[str] = []
    for key, value in fields.items():
        name = "body" if key == "_schema" and not prefix else f"{prefix}{key}"
        if isinstance(value, dict) and not all(isinstance(k, int) for k in value):
            names.extend(_describe(value, f"{name}."))
        else:
            names.append(name)
    return names


def error_body(
    status: int, message: str, fields: dict[str, Any] | None = None, code: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": status,
        "code": code or _CODES.get(status, "error"),
        "message": message,
    }
    if fields:
        error["fields"] = fields
    return {"error": error}


def wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def _respond(status: int, message: str, fields: dict[str, Any] | None = None,
             code: str | None = None, headers: Any = None) -> Response | tuple[Any, ...]:
    if headers and "Retry-After" in headers:
        g.retry_after = headers["Retry-After"]
    if wants_json():
        response = jsonify(error_body(status, message, fields, code))
        response.status_code = status
        if headers:
            response.headers.extend(headers)
        return response
    return render_template("error.html", status=status, message=message), status, headers or {}


def handle_domain_error(exc: DomainError) -> Any:
    return _respond(exc.status, exc.message, exc.fields, exc.code, headers=exc.headers)


def handle_http_exception(exc: HTTPException) -> Any:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    fields = None
    message = exc.description or "Error."
    if "messages" in data:
        fields = _flatten_locations(data["messages"])
        message = "Invalid input: " + ", ".join(_describe(fields)) + "."
    elif data.get("message"):
        message = data["message"]
    if status == 400 and "JSON" in message:
        message = "The request body is not valid JSON."
    if status == 429:  # a rate limit (extensions.limited); Retry-After is added by the limiter
        message = f"Too many requests: the limit here is {exc.description}. Try again later."
    headers = None
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers = {"Allow": exc.get_response().headers["Allow"]}
    return _respond(status, message, fields, headers=headers)


def handle_unexpected(exc: Exception) -> Any:
    if current_app.testing:
        raise exc  # let the test show the traceback rather than a polite 500
    log.exception("unhandled error", exc_info=exc)
    return _respond(500, "Something went wrong on our side; it has been logged.")


def unavailable(exc: BaseException) -> bool:
    """Whether a database error means the database cannot be reached (down, restarting, its
    connection lost, the pool exhausted), so the request may succeed later: not a bug."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return False


UNAVAILABLE = "The service is briefly unavailable; please try again in a moment."


def handle_database_error(exc: Exception) -> Any:
    """The database unreachable: 503 with Retry-After (JSON error, or a page that needs no
    database: not the site's shell, whose nav reads the account). SQLAlchemy has invalidated the
    dead connections; the pool's pre-ping gives the next request a fresh one."""
    if not unavailable(exc):
        return handle_unexpected(exc)
    log.warning("database unavailable: %s", exc.__class__.__name__, exc_info=exc)
    retry = {"Retry-After": str(current_app.config.get("UNAVAILABLE_RETRY_AFTER", 5))}
    if wants_json():
        return _respond(503, UNAVAILABLE, headers=retry)
    g.retry_after = retry["Retry-After"]
    page = current_app.jinja_env.get_template("unavailable.html").render(message=UNAVAILABLE)
    return Response(page, status=503, mimetype="text/html", headers=retry)


def _render_server_refusal() -> None:
    status = request.environ.get(SERVER_REFUSAL)
    if status:
        abort(status)


def keep_own_retry_after(app: Flask) -> None:
    """An error that says when to retry (a 503, a 409 for a key still held) keeps its own
    Retry-After: Flask-Limiter sets the header on every response of a limited route to when
    the route's window resets (for a 429 that is right). Registered before the limiter, so it
    runs after it (Flask runs after_request functions last-registered first)."""

    @app.after_request
    def restore(response: Response) -> Response:
        own = g.pop("retry_after", None)
        if own is not None and response.status_code != 429:
            response.headers["Retry-After"] = own
        return response


def init_app(app: Flask) -> None:
    app.before_request(_render_server_refusal)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(sa_exc.DBAPIError, handle_database_error)
    app.register_error_handler(sa_exc.TimeoutError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
