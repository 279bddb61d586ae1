"""Conditional requests (RFC 9110 §13): an ``ETag`` on reads of needs, offers and provider
profiles, ``If-None-Match`` -> 304 Not Modified, and ``If-Match`` on offer updates -> 412
Precondition Failed when it names a version that is no longer current; on need updates the
same, against the digest the customer's read of the need was sent with.

A need's and a profile's ETag is a digest of the representation you were sent (it differs per
viewer, as the representation does). An offer's is its ``revision`` and status, ``"3-pending"``:
it changes whenever the provider revises the offer or its state changes, which is what
``If-Match`` protects (the provider's reputation shown inside it is not part of the offer)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, request

from marketplace.errors import PreconditionFailed

__all__ = ["PreconditionFailed", "check_if_match", "conditional", "if_match_revision",
           "tagged"]


def digest_tag(response: Response) -> str:
    return hashlib.sha256(response.get_data()).hexdigest()[:32]


def offer_tag(offer: Any) -> str:
    """An offer's version: its revision and status (a dict from the API, or the row)."""
    if isinstance(offer, dict):
        return f"{offer['revision']}-{offer['status']}"
    return f"{offer.revision}-{offer.status.value}"


def from_body(tag: Callable[[Any], str]) -> Callable[[Response], str]:
    return lambda response: tag(response.get_json())


def conditional(tag: Callable[[Response], str] = digest_tag) -> Callable[[Any], Any]:
    """Give a successful answer of the view an ``ETag`` (``tag`` of the response), and answer
    a matching ``If-None-Match`` with 304 and no body. Apply it outside ``blp.response``."""

    def decorator(view: Any) -> Any:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            response = view(*args, **kwargs)
            if not isinstance(response, Response) or response.status_code != 200:
                return response
            etag = tag(response)
            response.set_etag(etag)
            if request.if_none_match.contains(etag) or request.if_none_match.star_tag:
                unchanged = Response(status=304)
                unchanged.set_etag(etag)
                return unchanged
            return response

        return wrapper

    return decorator


def tagged(tag: Callable[[Response], str]) -> Callable[[Any], Any]:
    """Give a successful answer of an update its new ``ETag``."""

    def decorator(view: Any) -> Any:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            response = view(*args, **kwargs)
            if isinstance(response, Response) and response.status_code == 200:
                response.set_etag(tag(response))
            return response

        return wrapper

    return decorator


def check_if_match(current: str, what: str = "offer") -> None:
    """Refuse with 412 when the request's ``If-Match`` names neither ``current`` nor ``*``."""
    if_match = request.if_match
    if not request.headers.get("If-Match") or if_match.star_tag:
        return
    if not if_match.contains(current):
        raise PreconditionFailed(
            f'The {what} changed since you read it: it is now "{current}".',
            {"If-Match": [f'Not the current version ("{current}").']})


def if_match_revision() -> int | None:
    """The revision an ``If-Match`` of an offer names (``"3-pending"`` -> 3), if any."""
    for tag in request.if_match.as_set():
        head = tag.partition("-")[0]
        if head.isdigit():
            return int(head)
    return None
