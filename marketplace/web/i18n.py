"""Who is reading, as far as formatting goes: their IANA time zone and their locale.

Both come from the browser (app.js reports ``Intl``'s zone and ``navigator.language`` with the
sign-in form and whenever a page was rendered for another zone) and are kept on the account
(``users.time_zone``, ``users.locale``). Without an account the request's Accept-Language
gives the locale and times are rendered in UTC — which app.js then rewrites into the
browser's zone. The page's words stay English: dates and amounts are written the English way
of the reader's territory (en_DE: "Thu, 3 Dec, 14:43", "1.250,00 €")."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any, NamedTuple

from babel import Locale, UnknownLocaleError
from flask import g, has_request_context, request
from flask_login import current_user

from marketplace.db_types import utcnow
from marketplace.extensions import db

DEFAULT_ZONE = "UTC"
DEFAULT_LOCALE = "en_US"
MAX_LOCALE_LENGTH = 35


@functools.cache
def zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_zone(name: str | None) -> str | None:
    return name if name and name in zone_names() else None


@functools.lru_cache(maxsize=512)
def valid_locale(tag: str | None) -> str | None:
    """A browser's language tag ("de-DE", "en") as a Babel locale name, or None."""
    if not tag or len(tag) > MAX_LOCALE_LENGTH:
        return None
    try:
        return str(Locale.parse(tag.replace("-", "_")))
    except (ValueError, TypeError, UnknownLocaleError):
        return None


@functools.lru_cache(maxsize=512)
def display_locale(tag: str | None) -> str:
    """The English of the reader's territory (de_DE -> en_DE), else en_US."""
    name = valid_locale(tag)
    if name:
        territory = Locale.parse(name).territory
        if territory:
            try:
                return str(Locale("en", territory))
            except UnknownLocaleError:
                pass
        if name.startswith("en"):
            return name if name != "en" else DEFAULT_LOCALE
    return DEFAULT_LOCALE


def _from_account(attribute: str) -> str | None:
    if has_request_context() and current_user and current_user.is_authenticated:
        return getattr(current_user, attribute, None)
    return None


class Reader(NamedTuple):
    """How this request's pages write times and amounts: the reader's zone, their locale, the
    English of its territory (``display_locale``) and this year in their zone."""

    zone: str
    locale: str
    display: str
    year: int


def reader() -> Reader:
    """The request's reader, worked out once per request (a page asks for it for every time
    and amount it shows; ``remember`` forgets it)."""
    if not has_request_context():
        return Reader(DEFAULT_ZONE, DEFAULT_LOCALE, display_locale(DEFAULT_LOCALE),
                      utcnow().year)
    found = g.get("reader")
    if found is None:
        zone = valid_zone(_from_account("time_zone")) or DEFAULT_ZONE
        chosen = valid_locale(_from_account("locale"))
        if chosen is None:
            for tag, _quality in request.accept_languages:
                chosen = valid_locale(tag)
                if chosen:
                    break
        locale = chosen or DEFAULT_LOCALE
        found = g.reader = Reader(zone, locale, display_locale(locale),
                                  utcnow().astimezone(zoneinfo.ZoneInfo(zone)).year)
    return found


def viewer_zone() -> str:
    """The zone this page's times are rendered in."""
    return reader().zone


def viewer_locale() -> str:
    """The reader's locale (Babel name): the account's, else the request's languages."""
    return reader().locale


def viewer_display_locale() -> str:
    return reader().display


def remember(user: Any, zone: str | None, locale: str | None) -> bool:
    """Keep what the browser reported on the account (valid values only); True if changed."""
    changed = False
    zone, locale = valid_zone(zone), valid_locale(locale)
    if zone and user.time_zone != zone:
        user.time_zone, changed = zone, True
    if locale and user.locale != locale:
        user.locale, changed = locale, True
    if changed:
        db.session.commit()
        g.pop("reader", None)
    return changed


# Where road distances are written in miles (CLDR's measurement system for them is "US" or
# "UK"); everyone else reads kilometres.
MILE_TERRITORIES = frozenset({"US", "GB", "LR", "MM"})


@functools.lru_cache(maxsize=512)  # a pure function of its argument, asked for every distance shown
def unit_of_locale(locale: str | None) -> str:
    """A locale without a territory reads as its language's: English as the US, else km."""
    parsed = Locale.parse(valid_locale(locale) or DEFAULT_LOCALE)
    territory = parsed.territory or ("US" if parsed.language == "en" else None)
    return "mi" if territory in MILE_TERRITORIES else "km"


def viewer_distance_unit() -> str:
    """'mi' or 'km': the account's choice, else its locale's (a US locale reads miles)."""
    chosen = _from_account("distance_unit")
    return chosen if chosen in ("km", "mi") else unit_of_locale(viewer_locale())
