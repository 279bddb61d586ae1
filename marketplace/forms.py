"""Glue between HTML forms and the marshmallow schemas the API uses: one set of rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import request, url_for

FormErrors = dict[str, list[str]]


def flatten(messages: Any, aliases: dict[str, str] | None = None, prefix: str = "") -> FormErrors:
    """Nested marshmallow messages -> {form field: [messages]}; ``aliases`` renames dotted
    paths (``{"budget.amount": "budget"}``) to the input that shows them."""
    aliases = aliases or {}
    out: FormErrors = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}{key}" if key != "_schema" else prefix.rstrip(".") or "_form"
            if isinstance(value, dict):
                for k, v in flatten(value, aliases, f"{path}.").items():
                    out.setdefault(k, []).extend(v)
            else:
                name = aliases.get(path, path)
                out.setdefault(name, []).extend(value if isinstance(value, list) else [value])
    return out


def local_datetime(text: str | None, offset_minutes: str | None = None) -> datetime | None:
    """A ``datetime-local`` value, shifted to UTC by the browser's offset when it sent one."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    try:
        offset = int(offset_minutes or 0)
    except ValueError:
        offset = 0
    if not -840 <= offset <= 840:
        offset = 0
    return (value + timedelta(minutes=offset)).replace(tzinfo=UTC)


def safe_next(default: str) -> str:
    """Only same-site relative redirects, from a ``next`` form field or query parameter."""
    target = request.form.get("next") or request.args.get("next")
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc and "\\" not in target:
        return target
    return default


def home() -> str:
    return url_for("accounts.home")
