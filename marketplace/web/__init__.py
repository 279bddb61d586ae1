"""The web app's HTML routes and page composition: the only code that puts several features
together on one page. Views parse a form with the API's schema (``forms``), call services and
render; they never query the database themselves."""

from __future__ import annotations

from flask import Flask

from marketplace.web import accounts, needs, providers, shell

BLUEPRINTS = (accounts.bp, shell.bp, needs.bp, providers.bp)


def register(app: Flask) -> None:
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
