from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Place:
    label: str
    lat: float
    lon: float
    country_code: str | None = None
    population: int | None = None
    source: str = "gazetteer"


class GeocoderUnavailable(Exception):
    """The geocoding service could not be reached or refused; not the user's fault."""


class Geocoder(Protocol):
    def search(self, query: str, limit: int = 5) -> list[Place]:
        """Candidates for ``query``, best first; empty when nothing matches."""
        ...

    def reverse(self, lat: float, lon: float) -> Place | None:
        """The town or city around (lat, lon), labelled as ``search`` labels it; None when
        there is none near enough to name the point by."""
        ...
