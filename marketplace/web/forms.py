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

# Marshmallow's words (and the API's precise ones) are meant for developers; a form says what
# to do. ``people_words`` rewords a message for the input it belongs to: first the input's own
# phrasing (_FIELD_WORDS), else a general one (_GENERAL_WORDS). Unknown messages pass as they
# are (they are already written for people: "Choose a category.").
FILL_IN = "Fill this in."
_REQUIRED = {"Missing data for required field.", "Field may not be null."}
_LENGTH = re.compile(r"Must be (?P<min>\d+)-(?P<max>\d+) characters\.")
_NOT_EMPTY = re.compile(r"Must not be empty; at most (?P<max>\d+) characters\.")
_AT_MOST = re.compile(r"At most (?P<max>\d+) characters\.|Longer than maximum length "
                      r"(?P<max2>\d+)\.")
_RANGE = re.compile(r"Must be greater than or equal to (?P<min>-?[\d.]+) and less than or "
                    r"equal to (?P<max>-?[\d.]+)\.")
_LENGTH_RANGE = re.compile(r"Length must be between (?P<min>\d+) and (?P<max>\d+)\.")
_MIN_LENGTH = re.compile(r"Shorter than minimum length (?P<min>\d+)\.")

# input -> {kind: words}; kinds: required, length (min, max), max (max), range (min, max).
_FIELD_WORDS: dict[str, dict[str, str]] = {
    "title": {"required": "Give your need a title, like “Catering for 20 people on Saturday”.",
              "length": "Give your need a title of {min} to {max} characters."},
    "description": {"max": "Keep the details to {max} characters or fewer."},
    "message": {"max": "Keep your message to {max} characters or fewer."},
    "body": {"required": "Write your message first.",
             "not_empty": "Write your message (up to {max} characters).",
             "max": "Keep your message to {max} characters or fewer."},
    "comment": {"max": "Keep your comment to {max} characters or fewer."},
    "bio": {"max": "Keep your introduction to {max} characters or fewer."},
    "note": {"max": "Keep your note to {max} characters or fewer."},
    "reason": {"max": "Keep the reason to {max} characters or fewer."},
    "address": {"max": "Keep the address to {max} characters or fewer."},
    "name": {"required": "Type a name.", "not_empty": "Type a name of up to {max} characters.",
             "max": "Keep the name to {max} characters or fewer."},
    "display_name": {"required": "Type the name customers will see.",
                     "not_empty": "Type the name customers will see (up to {max} characters).",
                     "max": "Keep the name to {max} characters or fewer."},
    "email": {"required": "Enter your email address, like name@example.com.",
              "invalid": "Enter an email address like name@example.com."},
    "password": {"required": "Enter your password.",
                 "length": "Choose a password of at least {min} characters (and at most {max})."},
    "new_password": {"length": "Choose a password of at least {min} characters (and at most "
                               "{max})."},
    "radius_km": {"required": "Say how far a provider may come, in km.",
                  "range": "Choose a distance from {min} to {max} km."},
    "max_offers": {"range": "Choose from {min} to {max} offers, or leave this empty."},
    "lat": {"range": "Latitude runs from -90 to 90: check the number, or type a place instead."},
    "lon": {"range": "Longitude runs from -180 to 180: check the number, or type a place "
                     "instead."},
    "budget": {"positive": "Enter a budget above zero."},
    "price": {"positive": "Enter a price above zero."},
    "category": {"required": "Choose a category."},
}
_GENERAL_WORDS = {
    "required": FILL_IN,
    "length": "Use {min} to {max} characters.",
    "max": "Shorten this to {max} characters or fewer.",
    "not_empty": "Fill this in (up to {max} characters).",
    "range": "Choose a number from {min} to {max}.",
    "positive": "Enter an amount above zero.",
    "invalid": "Check this and try again.",
}
_FIXED = {"Not a valid email address.": "invalid", "Must be more than 0.": "positive"}
_SIMPLE = {"Not a valid integer.": "Enter a whole number.",
           "Not a valid number.": "Enter a number.",
           "Not a valid boolean.": "Tick the box or leave it empty.",
           "Invalid input type.": "Check this and try again.",
           "Not a valid string.": "Check this and try again."}


def _number(text: str) -> str:
    return text[:-2] if text.endswith(".0") else text


def people_words(name: str, message: str) -> str:
    """A schema's message for the form input ``name`` (or a dotted path: its last part), as
    words that say what to do: "Length must be between 10 and 200." for ``title`` is "Give
    your need a title of 10 to 200 characters."."""
    if name == "_form":  # a hidden input's or the whole form's: already the form's words
        return FILL_IN if message in _REQUIRED else message
    field = name.rsplit(".", 1)[-1].split("-", 1)[0]
    own = _FIELD_WORDS.get(field, {})
    kind, values = None, {}
    if message in _REQUIRED:
        kind = "required"
    elif message in _FIXED:
        kind = _FIXED[message]
    elif match := _LENGTH.fullmatch(message) or _LENGTH_RANGE.fullmatch(message):
        kind, values = "length", match.groupdict()
    elif match := _NOT_EMPTY.fullmatch(message):
        kind, values = "not_empty", match.groupdict()
    elif match := _AT_MOST.fullmatch(message):
        kind, values = "max", {"max": match.group("max") or match.group("max2")}
    elif match := _RANGE.fullmatch(message):
        kind, values = "range", {k: _number(v) for k, v in match.groupdict().items()}
    elif match := _MIN_LENGTH.fullmatch(message):
        kind, values = "length", {"min": match.group("min"), "max": "…"}
    elif message in _SIMPLE:
        return _SIMPLE[message]
    if kind is None:
        return message
    words = own.get(kind) or _GENERAL_WORDS[kind]
    return words.format(**values)
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
                    worded = people_words(name, message) if isinstance(message, str) else message
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

