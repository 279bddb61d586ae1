"""OpenStreetMap Nominatim through geopy: an identifying user agent, at most one request per
second (geopy's RateLimiter), and an in-process cache of answers."""

from __future__ import annotations

import threading
from collections import OrderedDict

from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim

from marketplace.geocoding.base import GeocoderUnavailable, Place

CACHE_SIZE = 2048


class NominatimGeocoder:
    def __init__(self, user_agent: str, domain: str = "nominatim.openstreetmap.org",
                 scheme: str = "https") -> None:
        self._client = Nominatim(user_agent=user_agent, domain=domain, scheme=scheme, timeout=5)
        self._geocode = RateLimiter(self._client.geocode, min_delay_seconds=1.0, max_retries=1,
                                    error_wait_seconds=2.0, swallow_exceptions=False)
        self._cache: OrderedDict[tuple[str, int], list[Place]] = OrderedDict()
        self._lock = threading.Lock()

    def search(self, query: str, limit: int = 5) -> list[Place]:
        key = (" ".join(query.casefold().split()), limit)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        try:
            found = self._geocode(query, exactly_one=False, limit=limit, addressdetails=True)
        except GeopyError as exc:
            raise GeocoderUnavailable(str(exc)) from exc
        places = [
            Place(label=loc.address, lat=float(loc.latitude), lon=float(loc.longitude),
                  country_code=(loc.raw.get("address", {}).get("country_code") or "").upper()
                  or None, source="nominatim")
            for loc in (found or [])
        ]
        with self._lock:
            self._cache[key] = places
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return places
