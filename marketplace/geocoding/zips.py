"""US ZIP codes, offline: the ``zipcodes`` package ships every ZIP code with its centre and
town. "78701", "78701-1234" and "78701, US" are ZIP codes; anything else is left to the
geocoder."""

from __future__ import annotations

import re
import threading
from typing import Any

from marketplace.geocoding.base import Place

ZIP = re.compile(r"\s*(\d{5})(?:-\d{4})?\s*(?:,?\s*(?:US|USA|United States))?\s*", re.I | re.A)

_lock = threading.Lock()
_by_code: dict[str, dict[str, Any]] | None = None


def _table() -> dict[str, dict[str, Any]]:
    """Code -> row, built once per process (the package scans a list on every call)."""
    global _by_code
    with _lock:
        if _by_code is None:
            import zipcodes

            _by_code = {row["zip_code"]: row for row in zipcodes.list_all()
                        if row.get("lat") and row.get("long")}
        return _by_code


def is_zip(query: str) -> bool:
    return ZIP.fullmatch(query) is not None


def lookup(query: str) -> Place | None:
    """The place of a US ZIP code, or None (not a ZIP code, or no such code)."""
    match = ZIP.fullmatch(query)
    if match is None:
        return None
    row = _table().get(match.group(1))
    if row is None:
        return None
    return Place(label=f"{row['city']}, {row['state']} {row['zip_code']}, US",
                 lat=float(row["lat"]), lon=float(row["long"]), country_code="US",
                 source="zipcodes")
