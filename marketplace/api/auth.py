"""``Authorization: Bearer <token>`` on every JSON route that needs a caller."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, g, request

from marketplace.accounts.auth import user_for_token
from marketplace.errors import Unauthorized


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def auth_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Require a valid bearer token; the caller is then ``g.user``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        user = user_for_token(token) if token else None
        if user is None:
            g.bearer_error = "invalid_token" if token else None
            raise Unauthorized(
                "Send a valid API token as 'Authorization: Bearer <token>'."
                if token is None else "That API token is not valid (revoked or mistyped)."
            )
        g.user = user
        return view(*args, **kwargs)

    return wrapper


def challenge(response: Response) -> Response:
    """Every 401 names the scheme to authenticate with (RFC 9110 and RFC 6750): ``Bearer
    realm="api"``, with ``error="invalid_token"`` when the token sent is not valid."""
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        error = g.get("bearer_error")
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"' + (
            f', error="{error}"' if error else "")
    return response
