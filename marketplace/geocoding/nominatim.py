"""OpenStreetMap Nominatim through geopy: an identifying user agent, at most one request per
second (geopy's RateLimiter in each process, and with ``REDIS_URL`` a gate shared by every
process), and an in-process cache of answers."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim

from marketplace.geocoding.base import GeocoderUnavailable, Place

CACHE_SIZE = 2048
MIN_DELAY_SECONDS = 1.0


class SharedGate:
    """Lets one request through per interval across every process using the same Redis key:
    the first to SET the key (NX, expiring after the interval) goes; the others wait out its
    remaining time and try again."""

    def __init__(self, redis_url: str, key: str, interval: float = MIN_DELAY_SECONDS) -> None:
        import redis

        self._errors = redis.RedisError
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.key, self._ms = key, int(interval * 1000)

    def wait(self) -> None:
        while True:
            try:
                if self._redis.set(self.key, b"1", nx=True, px=self._ms):
                    return
                remaining = self._redis.pttl(self.key)
            except self._errors as exc:
                raise GeocoderUnavailable(f"rate-limit gate unavailable: {exc}") from exc
            time.sleep(max(remaining, 1) / 1000)  # the key's expiry is the only signal


class NominatimGeocoder:
    def __init__(self, user_agent: str, domain: str = "nominatim.openstreetmap.org",
                 scheme: str = "https", redis_url: str | None = None) -> None:
        self._client = Nominatim(user_agent=user_agent, domain=domain, scheme=scheme, timeout=5)
        # One key per Nominatim server: every process (and deployment) on this Redis that asks
        # the same server shares its 1 request/s.
        self._gate = SharedGate(redis_url, f"nominatim-gate:{domain}") if redis_url else None
        self._geocode = RateLimiter(self._gated, min_delay_seconds=MIN_DELAY_SECONDS,
                                    max_retries=1, error_wait_seconds=2.0,
                                    swallow_exceptions=False)
        self._reverse = RateLimiter(self._gated_reverse, min_delay_seconds=MIN_DELAY_SECONDS,
                                    max_retries=1, error_wait_seconds=2.0,
                                    swallow_exceptions=False)
        self._cache: OrderedDict[tuple[str, int], list[Place]] = OrderedDict()
        self._reversed: OrderedDict[tuple[float, float], Place | None] = OrderedDict()
        self._lock = threading.Lock()

    def _gated(self, *args: Any, **kwargs: Any) -> Any:
        if self._gate is not None:
            self._gate.wait()
        return self._client.geocode(*args, **kwargs)

    def _gated_reverse(self, *args: Any, **kwargs: Any) -> Any:
        if self._gate is not None:
            self._gate.wait()
        return self._client.reverse(*args, **kwargs)

    def reverse(self, lat: float, lon: float) -> Place | None:
        """Nominatim's town-level name (zoom 10) for the point: never a street."""
        key = (round(lat, 6), round(lon, 6))
        with self._lock:
            if key in self._reversed:
                self._reversed.move_to_end(key)
                return self._reversed[key]
        try:
            loc = self._reverse((lat, lon), exactly_one=True, zoom=10, addressdetails=True)
        except GeopyError as exc:
            raise GeocoderUnavailable(str(exc)) from exc
        place = None if loc is None else Place(
            label=loc.address, lat=float(loc.latitude), lon=float(loc.longitude),
            country_code=(loc.raw.get("address", {}).get("country_code") or "").upper() or None,
            source="nominatim")
        with self._lock:
            self._reversed[key] = place
            while len(self._reversed) > CACHE_SIZE:
                self._reversed.popitem(last=False)
        return place

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
