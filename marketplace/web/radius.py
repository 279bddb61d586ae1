"""A radius box in the reader's unit: a reader of miles types, reads back and is refused in miles
("How far may a provider come? (mi)", "Choose a distance from 1 to 62 miles."); what is stored
and what the API carries stay kilometres. The input's name says its unit (``radius_mi`` or
``radius_km``), so a form filled in before the reader switched units is still read right."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marketplace.web.i18n import viewer_distance_unit

KM_PER_MILE = 1.609344
UNIT_WORDS = {"km": "km", "mi": "miles"}


@dataclass(frozen=True)
class Radius:
    """One form's radius box: its unit and its limits in that unit (whole numbers inside the
    kilometre limits: 1-100 km reads as 1-62 mi)."""

    unit: str
    low: int
    high: int

    @property
    def name(self) -> str:
        return f"radius_{self.unit}"

    @property
    def words(self) -> str:
        return UNIT_WORDS[self.unit]

    def shown(self, km: float | str | None) -> str:
        """A stored radius as this box shows it: 16.09344 km -> "10" (mi), 30 -> "18.6" (mi),
        25.0 -> "25" (km)."""
        if km is None or km == "":
            return ""
        value = float(km) / (KM_PER_MILE if self.unit == "mi" else 1)
        return f"{value:.1f}".removesuffix(".0") if self.unit == "mi" else f"{value:g}"

    def to_km(self, value: float) -> float:
        return value * KM_PER_MILE if self.unit == "mi" else value

    def range_words(self) -> str:
        return f"Choose a distance from {self.low} to {self.high} {self.words}."

    def read(self, form: Mapping[str, Any], required: str,
             was_km: float | None = None) -> tuple[Any, list[str]]:
        """The radius a form sent, for the schema's ``radius_km`` — and the box's errors.
        Kilometres pass as typed (the schema judges them, in the words it always had); miles
        are judged here, in miles, then sent on as kilometres. A box left as it showed
        ``was_km`` (rounded: 30 km reads "18.6") keeps ``was_km`` as it was."""
        text = str(form.get(self.name, "")).strip()
        if self.unit == "km":
            return text, []
        if not text:
            return None, [required]
        if was_km is not None and text == self.shown(was_km):
            return was_km, []
        try:
            value = float(text)
        except ValueError:
            return None, ["Enter a number of miles, like 10."]
        if not math.isfinite(value) or not self.low <= value <= self.high:
            return None, [self.range_words()]
        return self.to_km(value), []

    def map_metres(self) -> float:
        """Metres in one of this box's units (the post-need map draws what was typed)."""
        return KM_PER_MILE * 1000 if self.unit == "mi" else 1000.0


def radius(low_km: float, high_km: float, form: Mapping[str, Any] | None = None) -> Radius:
    """The radius box of a form: in the unit the posted form used (``form``), else in the
    reader's."""
    if form is not None and "radius_mi" in form:
        unit = "mi"
    elif form is not None and "radius_km" in form:
        unit = "km"
    else:
        unit = viewer_distance_unit()
    if unit == "mi":
        return Radius("mi", math.ceil(low_km / KM_PER_MILE), math.floor(high_km / KM_PER_MILE))
    return Radius("km", math.ceil(low_km), math.floor(high_km))
