"""Pure geography: distances, privacy grid cells, distance bands. Depends on nothing of ours."""

from marketplace.geo.box import SearchBox, lat_row, search_box
from marketplace.geo.core import (
    DISTANCE_BANDS,
    EARTH_RADIUS_KM,
    Point,
    band_index,
    cell_distance_km,
    display_km,
    distance_band,
    grid_cell_centre,
    haversine_km,
)

__all__ = [
    "EARTH_RADIUS_KM",
    "DISTANCE_BANDS",
    "Point",
    "SearchBox",
    "lat_row",
    "search_box",
    "band_index",
    "cell_distance_km",
    "display_km",
    "distance_band",
    "grid_cell_centre",
    "haversine_km",
]
