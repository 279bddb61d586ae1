from __future__ import annotations

import functools
from typing import Any

from flask import current_app

from marketplace.errors import DomainError, Invalid
from marketplace.geo import grid_cell_centre
from marketplace.geocoding import GeocoderUnavailable, Place, geocoder, zips


class ServiceUnavailable(DomainError):
    """The geocoder is away: 503 with Retry-After, as when the database is
    (``UNAVAILABLE_RETRY_AFTER``)."""

    status, code = 503, "service_unavailable"

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {
            "Retry-After": str(current_app.config.get("UNAVAILABLE_RETRY_AFTER", 5))})
        super().__init__(message, **kwargs)


def search(query: str, limit: int = 5, field: str = "query") -> list[Place]:
    """Candidates, or a 422 naming ``field`` when the place is unknown. A US ZIP code is
    answered offline (``zips``), whichever geocoder is configured."""
    if zips.is_zip(query):
        found = zips.lookup(query)
        if found is None:
            message = f"No US ZIP code {query.strip()!r} was found."
            raise Invalid(message, _nest(field, [message + " Check the digits, or type a town."]))
        return [found]
    try:
        places = geocoder().search(query, limit)
    except GeocoderUnavailable:
        raise ServiceUnavailable("The geocoding service is unavailable; send coordinates "
                                 "instead or try again later.") from None
    if not places:
        raise Invalid(f"No place called {query!r} was found.",
                      _nest(field, [f"No place called {query!r} was found; try 'City, Country'."]))
    return places


def _nest(path: str, messages: list[str]) -> dict[str, object]:
    """'location.query' -> {"location": {"query": messages}}."""
    head, _, rest = path.partition(".")
    return {head: _nest(rest, messages) if rest else messages}


def resolve(query: str, field: str = "location.query") -> Place:
    return search(query, 1, field=field)[0]


def label_of_cell(lat: float, lon: float, field: str = "place") -> str:
    """The geocoder's name for the grid cell around (lat, lon) — asked of the cell's centre,
    so the label says no more than the cell does — or a 422 naming ``field``."""
    cell = grid_cell_centre(lat, lon)
    try:
        found = geocoder().reverse(cell.lat, cell.lon)
    except GeocoderUnavailable:
        raise ServiceUnavailable("The geocoding service is unavailable; leave out the place "
                                 "or try again later.") from None
    if found is None:
        message = "No named place is near these coordinates; leave out the place."
        raise Invalid(message, _nest(field, [message]))
    return found.label


def cell_name(lat: float, lon: float) -> str | None:
    """What a person reads for the grid cell around (lat, lon): the nearest listed town of
    the cell's centre ("Austin, TX"), from the offline gazetteer whatever geocoder is
    configured (pages name many cells; none may wait on a network service), or None far from
    any town. Asked of the centre, so it says no more than the cell does."""
    cell = grid_cell_centre(lat, lon)
    return _named_cell(round(cell.lat, 6), round(cell.lon, 6))


@functools.lru_cache(maxsize=4096)
def _named_cell(lat: float, lon: float) -> str | None:
    from marketplace.geocoding.gazetteer import shared_gazetteer

    found = shared_gazetteer().reverse(lat, lon)
    return None if found is None else found.label.removesuffix(", US")
