"""Pure geography: distances, privacy grid cells, distance bands. Depends on nothing of ours."""

from marketplace.geo.box import SearchBox, lat_row, search_box
from marketplace.geo.core import (
    CELL_SLACK_KM,
    DISTANCE_BANDS,
    EARTH_RADIUS_KM,
    SPHERE_MARGIN,
    Point,
    UnitVector,
    band_index,
    cell_distance_km,
    display_km,
    distance_band,
    grid_cell_centre,
    haversine_km,
    in_reach,
    km_cos,
    unit_vector,
)

__all__ = [
    "CELL_SLACK_KM",
    "SPHERE_MARGIN",
    "UnitVector",
    "km_cos",
    "unit_vector",
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
    "in_reach",
]
