"""The web app's HTML routes and page composition: the only code that puts several features
together on one page. Views parse a form with the API's schema (``forms``), call services and
render; they never query the database themselves."""

from __future__ import annotations

import mimetypes

from flask import Flask

from marketplace.web import (
    accounts,
    alerts,
    contacts,
    feed,
    filters,
    jobs,
    maps,
    media,
    messages,
    moderation,
    needs,
    notifications,
    offers,
    providers,
    ratings,
    recovery,
    shell,
    trends,
)

BLUEPRINTS = (accounts.bp, notifications.bp, needs.bp, offers.bp, messages.bp, ratings.bp,
              providers.bp, feed.bp, jobs.bp, contacts.bp, moderation.bp,
              recovery.bp, trends.bp, alerts.bp, media.bp)


def register(app: Flask) -> None:
    mimetypes.add_type("application/manifest+json", ".webmanifest")
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
    shell.register(app)
    filters.register(app)
    maps.register(app)
    media.register(app)
