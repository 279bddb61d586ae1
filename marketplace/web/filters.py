"""Template filters every page uses: money and moments as the reader reads them — amounts in
their locale (Babel), times in their own zone inside ``<time datetime="…UTC…">`` elements, and
relative times ("in 2 days", "5 minutes ago") that app.js keeps current."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton, format_time
from flask import Flask
from markupsafe import Markup, escape

from marketplace.db_types import utcnow
from marketplace.money import format_amount, input_text
from marketplace.web.i18n import (
    reader,
    viewer_display_locale,
    viewer_distance_unit,
    viewer_zone,
)
from marketplace.web.radius import KM_PER_MILE

# Babel's units and threshold (format_timedelta); static/app.js uses the same to stay in step.
_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
          ("hour", 3600), ("minute", 60))
_THRESHOLD = 0.85


def money(value: dict[str, Any]) -> str:
    return format_amount(value["amount"], value["currency"], reader().locale)


def amount_input(value: dict[str, Any]) -> str:
    """What an amount box is pre-filled with: "1,250.50" (en_US), "1.250,50" (de_DE)."""
    return input_text(value["amount"], value["currency"], reader().locale)


def _aware(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def when_text(value: Any) -> str:
    """"Thu, Dec 3, 2:43 PM" in the viewer's zone (the year too when it is not this one)."""
    moment = _aware(value)
    if moment is None:
        return ""
    r = reader()
    return _when_text(moment, r.zone, r.display, r.year)


# Babel's formatting is the costly part of a page's times, and pages show the same moments
# (a need's dates, an offer's) to the same few zones and locales again and again: the texts
# are pure functions of their arguments, so the latest are kept.
@functools.lru_cache(maxsize=8192)
def _when_text(moment: datetime, zone_name: str, locale: str, this_year: int) -> str:
    zone = zoneinfo.ZoneInfo(zone_name)
    local = moment.astimezone(zone)
    skeleton = "MMMEd" if local.year == this_year else "yMMMEd"
    day = format_skeleton(skeleton, local, tzinfo=zone, locale=locale)
    text = f"{day}, {format_time(local, 'short', tzinfo=zone, locale=locale)}"
    return text.replace("\u202f", " ")  # CLDR's narrow space before AM/PM: as app.js writes it


def wall_time(value: Any) -> str:
    """What a ``datetime-local`` input is pre-filled with: the moment in the viewer's zone."""
    moment = _aware(value)
    if moment is None:
        return ""
    return moment.astimezone(zoneinfo.ZoneInfo(viewer_zone())).strftime("%Y-%m-%dT%H:%M")


@functools.lru_cache(maxsize=8192)
def _full_text(moment: datetime, zone_name: str, locale: str) -> str:
    return format_datetime(moment, "full", tzinfo=zoneinfo.ZoneInfo(zone_name), locale=locale)


def relative_text(value: Any, now: datetime | None = None) -> str:
    """"in 2 days", "5 minutes ago", "just now" — as static/app.js writes it."""
    moment = _aware(value)
    if moment is None:
        return ""
    seconds = (moment - (now or utcnow())).total_seconds()
    if abs(seconds) < 60:
        return "in less than a minute" if seconds > 0 else "just now"
    for unit, size in _UNITS:
        count = abs(seconds) / size
        if count >= _THRESHOLD:
            n = max(1, round(count))
            words = f"{n} {unit}{'' if n == 1 else 's'}"
            return f"in {words}" if seconds > 0 else f"{words} ago"
    return ""  # unreachable: a minute or more always has a unit


@functools.lru_cache(maxsize=8192)
def _time_open(moment: datetime, zone_name: str, locale: str) -> str:
    """``<time datetime="…Z" title="full"`` of a moment for a zone and locale (every time
    element of a page starts so; kept like the texts in it)."""
    # escape() each part (markupsafe's C speedups), not Markup.format's Python formatter
    return (f'<time datetime="{escape(_iso(moment))}" '
            f'title="{escape(_full_text(moment, zone_name, locale))}"')


@functools.lru_cache(maxsize=8192)
def _when_element(moment: datetime, zone_name: str, locale: str, this_year: int) -> Markup:
    return Markup(f"{_time_open(moment, zone_name, locale)} data-local>"
                  f"{escape(_when_text(moment, zone_name, locale, this_year))}</time>")


def when(value: Any) -> Markup:
    """An absolute time: ``<time datetime="…Z" title="full">Thu, Dec 3, 2:43 PM</time>``."""
    moment = _aware(value)
    if moment is None:
        return Markup("")
    r = reader()
    return _when_element(moment, r.zone, r.display, r.year)


def ago(value: Any) -> Markup:
    """A relative time that stays current: ``<time data-relative …>5 minutes ago</time>``."""
    moment = _aware(value)
    if moment is None:
        return Markup("")
    r = reader()
    return Markup(f"{_time_open(moment, r.zone, r.display)} data-relative>"
                  f"{escape(relative_text(moment))}</time>")


def until(value: Any) -> Markup:
    """Both, for deadlines: "Thu, Dec 3, 2:43 PM (in 2 days)"."""
    moment = _aware(value)
    if moment is None:
        return Markup("")
    return when(moment) + Markup(" <span class=\"muted\">(") + ago(moment) + Markup(")</span>")


def day(value: Any, fmt: str = "MMMM y") -> str:
    """A date without a time ("December 2026"), in the viewer's zone."""
    moment = _aware(value)
    if moment is None:
        return ""
    zone = zoneinfo.ZoneInfo(viewer_zone())
    return format_date(moment.astimezone(zone).date(), fmt, locale=viewer_display_locale())


def zone_label() -> str:
    """The viewer's zone as people know it ("Central Standard Time"), for form hints."""
    zone = viewer_zone()
    if zone == "UTC":
        return "UTC"
    return Locale.parse(viewer_display_locale()).time_zones.get(zone, {}).get("long", {}).get(
        "generic", zone.replace("_", " "))


def future(value: Any) -> bool:
    moment = _aware(value)
    return moment is not None and moment > utcnow()


# The distance bands (geo.DISTANCE_BANDS, decided in km) as a reader of miles reads them.
MILE_BANDS = {"under 2 km": "under 1 mi", "2-5 km": "1-3 mi", "5-10 km": "3-6 mi",
              "10-25 km": "6-15 mi", "25-50 km": "15-30 mi", "50-100 km": "30-60 mi",
              "over 100 km": "over 60 mi"}


def distance(km: float | None) -> str:
    """A distance in the reader's unit: "19 mi", "30 km" (a whole number, or one decimal
    under 10)."""
    if km is None:
        return ""
    unit = viewer_distance_unit()
    value = km / KM_PER_MILE if unit == "mi" else km
    shown = f"{value:.1f}".removesuffix(".0") if value < 10 else f"{round(value):d}"
    return f"{shown} {unit}"


def band(label: str | None) -> str:
    """A distance band ("2-5 km") in the reader's unit ("1-3 mi")."""
    if not label:
        return ""
    return MILE_BANDS.get(label, label) if viewer_distance_unit() == "mi" else label


def register(app: Flask) -> None:
    app.add_template_filter(distance, "distance")
    app.add_template_filter(band, "band")
    app.add_template_global(viewer_distance_unit, "distance_unit")
    app.add_template_filter(money, "money")
    app.add_template_filter(amount_input, "amount_input")
    app.add_template_filter(when, "when")
    app.add_template_filter(when_text, "when_text")
    app.add_template_filter(ago, "ago")
    app.add_template_filter(until, "until")
    app.add_template_filter(day, "day")
    app.add_template_test(future, "future")
    app.add_template_global(viewer_zone, "viewer_zone")
