"""Glue between HTML forms and the marshmallow schemas the API uses: one set of rules."""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import UTC, datetime, tzinfo
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


# What a datetime-local input sends (no offset); a space for browsers showing a text box.
WALL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?", re.ASCII)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def local_datetime(text: str | None, zone: str | None = None) -> datetime | None:
    """A ``datetime-local`` value read as wall time in the browser's IANA ``zone`` on that date
    (so a date across a DST change gets that date's offset), as aware UTC. No zone — a page
    used without JavaScript — reads it as UTC, as the page says. A repeated wall time (clocks
    going back) is its first occurrence; one the clocks skip is refused. ``ValueError``
    carries a message for the person."""
    if not text:
        return None
    try:
        if not WALL_TIME.fullmatch(text):
            raise ValueError
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("Pick a date and time.") from None
    if not zone:
        tz: tzinfo = UTC
    elif zone in _zone_names():
        tz = zoneinfo.ZoneInfo(zone)
    else:
        raise ValueError("Your browser reports a time zone we do not know, so this time cannot "
                         "be read. Check your device's time zone and reload the page.")
    try:
        instant = wall.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the first of a repeated hour
        exists = instant.astimezone(tz).replace(tzinfo=None) == wall
    except OverflowError:
        raise ValueError("Pick a date between the years 2000 and 2200.") from None
    if not exists:
        raise ValueError(f"{wall:%H:%M} on {wall:%Y-%m-%d} does not exist in {zone}: the clocks "
                         "skip it. Pick another time.")
    return instant


def safe_next(default: str) -> str:
    """Only same-site relative redirects, from a ``next`` form field or query parameter."""
    target = request.form.get("next") or request.args.get("next")
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc and "\\" not in target:
        return target
    return default


def home() -> str:
    return url_for("accounts.home")
