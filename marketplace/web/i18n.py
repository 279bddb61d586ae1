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
from typing import Any

from babel import Locale, UnknownLocaleError
from flask import g, has_request_context, request
from flask_login import current_user

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


def viewer_zone() -> str:
    """The zone this page's times are rendered in (looked up once per request)."""
    if not has_request_context():
        return DEFAULT_ZONE
    if "viewer_zone" not in g:
        g.viewer_zone = valid_zone(_from_account("time_zone")) or DEFAULT_ZONE
    return g.viewer_zone


def viewer_locale() -> str:
    """The reader's locale (Babel name): the account's, else the request's languages."""
    if not has_request_context():
        return DEFAULT_LOCALE
    if "viewer_locale" not in g:
        chosen = valid_locale(_from_account("locale"))
        if chosen is None:
            for tag, _quality in request.accept_languages:
                chosen = valid_locale(tag)
                if chosen:
                    break
        g.viewer_locale = chosen or DEFAULT_LOCALE
    return g.viewer_locale


def viewer_display_locale() -> str:
    return display_locale(viewer_locale())


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
        g.pop("viewer_locale", None)
        g.pop("viewer_zone", None)
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
