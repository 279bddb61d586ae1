"""What the maps and the place words of a page are made of (templates/_map.html, static/map.js).
A map only ever draws what the page's reader may already read: a need's location as its
``NeedView`` gives it (the grid cell for anyone but the customer and the accepted provider),
a provider's service area around the cell of their base. Shapes go to the page as data; the
page reads the same in words (``place_name``), so it says everything without the map."""

from __future__ import annotations

from typing import Any

from flask import Flask

from marketplace.geo import grid_cell_centre
from marketplace.geo.core import CELL_KM
from marketplace.geocoding.services import cell_name

# A cell drawn as a circle through its corners: about 1 km across.
CELL_RADIUS_M = round(CELL_KM * 1000 * 0.71)


def place_name(location: Any, lead: str = "near") -> str:
    """'near Austin, TX' for a point or cell (its cell's town); 'an area of about 1 km' far
    from any town. ``lead`` "Near" starts a sentence; "" gives the town alone."""
    name = cell_name(_lat(location), _lon(location))
    if name:
        return f"{lead} {name}".lstrip()
    return "An area of about 1 km" if lead[:1].isupper() else "an area of about 1 km"


def cell(location: Any, label: str = "", href: str | None = None) -> dict[str, Any]:
    """A location as the grid cell around it (a circle), whatever the location is."""
    centre = grid_cell_centre(_lat(location), _lon(location))
    return {"kind": "circle", "lat": centre.lat, "lon": centre.lon, "radius_m": CELL_RADIUS_M,
            "label": label, "href": href, "style": "cell"}


def area(location: Any, radius_km: float, label: str = "") -> dict[str, Any]:
    """A service area or a need's reach: ``radius_km`` around the cell of ``location``."""
    centre = grid_cell_centre(_lat(location), _lon(location))
    return {"kind": "circle", "lat": centre.lat, "lon": centre.lon,
            "radius_m": round(radius_km * 1000), "label": label, "style": "area"}


def pin(location: Any, label: str = "") -> dict[str, Any]:
    """The exact point: only for a reader ``NeedView`` gives it to (``location.approximate``
    false) — anyone else gets the cell."""
    if _get(location, "approximate", False):
        return cell(location, label)
    return {"kind": "pin", "lat": _lat(location), "lon": _lon(location), "label": label}


def _get(location: Any, key: str, default: Any = None) -> Any:
    if isinstance(location, dict):
        return location.get(key, default)
    return getattr(location, key, default)


def _lat(location: Any) -> float:
    return float(_get(location, "lat"))


def _lon(location: Any) -> float:
    return float(_get(location, "lon"))


def register(app: Flask) -> None:
    app.add_template_global(place_name, "place_name")
    app.add_template_global(cell, "map_cell")
    app.add_template_global(area, "map_area")
    app.add_template_global(pin, "map_pin")
