"""Glue between HTML forms and the marshmallow schemas the API uses: one set of rules.

Every form route reads its inputs into the payload its API twin takes and calls ``load`` with
that twin's schema, so a form refuses exactly what the API refuses; the refusal comes back as
``FormInvalid`` with messages keyed by the form's inputs, in words meant for a person."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from flask import request
from marshmallow import Schema, ValidationError
from marshmallow import fields as mf

FormErrors = dict[str, list[str]]

# Marshmallow's words for a value that is not there are meant for developers.
FILL_IN = "Fill this in."
_DEVELOPER_WORDING = {"Missing data for required field.": FILL_IN,
                      "Field may not be null.": FILL_IN}
_INTEGER = re.compile(r"[+-]?\d{1,30}", re.ASCII)
_MISSING = object()


class FormInvalid(Exception):
    """A form's input was refused; ``errors`` name the form's inputs (``_form``: the form)."""

    def __init__(self, errors: FormErrors) -> None:
        super().__init__(errors)
        self.errors = errors


def flatten(messages: Any, aliases: Mapping[str, str] | None = None,
            prefix: str = "") -> FormErrors:
    """Nested marshmallow messages -> {form input: [messages]}; ``aliases`` renames dotted
    paths (``{"budget.amount": "budget"}``) to the input that shows them, and the errors of a
    list's items belong to the list's input."""
    aliases = aliases or {}
    out: FormErrors = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema" or isinstance(key, int):
                path = prefix.rstrip(".") or "_form"
            else:
                path = f"{prefix}{key}"
            if isinstance(value, dict):
                for k, v in flatten(value, aliases, f"{path}.").items():
                    out.setdefault(k, []).extend(v)
            else:
                name = aliases.get(path, path)
                for message in value if isinstance(value, list) else [value]:
                    worded = _DEVELOPER_WORDING.get(message, message)
                    if worded not in out.setdefault(name, []):
                        out[name].append(worded)
    return out


def _as_posted(f: mf.Field, value: Any) -> Any:
    """One form value as the schema field takes it: form inputs are all text, so an integer
    field gets the number typed, and an empty input of a field that is not text counts as
    not given (``_MISSING``)."""
    if isinstance(f, mf.Nested) and isinstance(value, Mapping) and not f.many:
        return _payload(f.schema, value)
    if isinstance(f, mf.List) and isinstance(value, list):
        return [_as_posted(f.inner, item) for item in value]
    if not isinstance(value, str) or isinstance(f, mf.String):
        return value
    if not value.strip():
        return _MISSING
    if isinstance(f, mf.Integer) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return value


def _payload(schema: Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        f = schema.load_fields.get(name)
        posted = value if f is None else _as_posted(f, value)
        if posted is not _MISSING:
            out[name] = posted
    return out


def load(schema: Schema, values: Mapping[str, Any], *, aliases: Mapping[str, str] | None = None,
         refused: FormErrors | None = None, partial: bool = False) -> dict[str, Any]:
    """``schema.load`` of a form's values, shaped as the API's payload but typed as posted
    (text). ``refused`` holds what the caller already found wrong while reading the form, by
    schema field; those fields are not loaded, and every problem — theirs and the schema's —
    is raised at once as ``FormInvalid``, keyed by input through ``aliases``."""
    refused = refused or {}
    payload = _payload(schema, {k: v for k, v in values.items() if k not in refused})
    skipped = True if partial else tuple(refused) or None
    try:
        data = schema.load(payload, partial=skipped)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
    else:
        if not refused:
            return data
        messages = {}
    errors = flatten(refused, aliases)
    for name, extra in flatten(messages, aliases).items():
        errors.setdefault(name, []).extend(m for m in extra if m not in errors[name])
    raise FormInvalid(errors)


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

