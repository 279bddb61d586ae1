"""The JSON API (``/api/v1``): one module of routes per feature, each route three lines — load
with a schema, call a service, dump with a schema. Bearer-token authentication (``auth``),
idempotency keys on creating POSTs (``idempotency``), the blueprint class (``base``)."""

from __future__ import annotations

from flask import Flask

from marketplace.api import (
    accounts,
    blocks,
    contacts,
    geocoding,
    messages,
    moderation,
    needs,
    notifications,
    offers,
    providers,
    ratings,
    trends,
)
from marketplace.extensions import csrf, openapi

BLUEPRINTS = (accounts.blp, providers.blp, needs.blp, offers.blp, messages.blp, ratings.blp,
              notifications.blp, geocoding.blp, blocks.blp, contacts.blp,
              moderation.blp, trends.blp)


def register(app: Flask) -> None:
    for blp in BLUEPRINTS:
        openapi.register_blueprint(blp)
        csrf.exempt(blp)  # the JSON API authenticates with bearer tokens, never cookies
