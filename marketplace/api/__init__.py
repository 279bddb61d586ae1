"""The JSON API (``/api/v1``): one module of routes per feature, each route three lines — load
with a schema, call a service, dump with a schema. Bearer-token authentication (``auth``),
idempotency keys on creating POSTs (``idempotency``), the blueprint class (``base``)."""

from __future__ import annotations

from flask import Flask, Response, request

from marketplace.api import (
    accounts,
    alerts,
    blocks,
    contacts,
    document,
    events,
    geocoding,
    media,
    messages,
    moderation,
    needs,
    notifications,
    offers,
    providers,
    ratings,
    trends,
    webhooks,
)
from marketplace.api.auth import challenge
from marketplace.extensions import csrf, openapi
from marketplace.pagination import next_link

BLUEPRINTS = (accounts.blp, providers.blp, needs.blp, offers.blp, messages.blp, ratings.blp,
              notifications.blp, geocoding.blp, blocks.blp, contacts.blp,
              moderation.blp, trends.blp, alerts.blp, events.blp, media.blp, webhooks.blp)


def register(app: Flask) -> None:
    openapi.finisher = document.finish  # operation ids, statuses, headers (api/document.py)
    for blp in BLUEPRINTS:
        openapi.register_blueprint(blp)
        csrf.exempt(blp)  # the JSON API authenticates with bearer tokens, never cookies
    app.after_request(conventions)


def conventions(response: Response) -> Response:
    """What every API response follows (docs/api.md, "Conventions"): a page's ``Link`` to the
    next one, ``WWW-Authenticate`` on a 401."""
    if not request.path.startswith("/api/"):
        return response
    return challenge(next_link(response))
