"""A local request-and-offer marketplace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. Imported lazily so ``python -m marketplace.serve`` can monkey-patch the
    standard library for gevent before Flask, SQLAlchemy or psycopg are imported."""
    from marketplace.app import create_app as factory

    return factory(config)
