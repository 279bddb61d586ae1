"""Place names to coordinates: one interface, an offline gazetteer by default, Nominatim when
configured (``GEOCODER=nominatim``)."""

from __future__ import annotations

from flask import current_app

from marketplace.geocoding.base import Geocoder, GeocoderUnavailable, Place

__all__ = ["Geocoder", "GeocoderUnavailable", "Place", "geocoder"]


def geocoder() -> Geocoder:
    """The app's geocoder, built once per app."""
    found: Geocoder | None = current_app.extensions.get("geocoder")
    if found is None:
        if current_app.config["GEOCODER"] == "nominatim":
            from marketplace.geocoding.nominatim import NominatimGeocoder

            found = NominatimGeocoder(
                user_agent=current_app.config["NOMINATIM_USER_AGENT"],
                domain=current_app.config["NOMINATIM_DOMAIN"],
                scheme=current_app.config["NOMINATIM_SCHEME"],
                # several processes share Nominatim's 1 request/s through Redis
                redis_url=current_app.config["REDIS_URL"],
            )
        else:
            from marketplace.geocoding.gazetteer import shared_gazetteer

            found = shared_gazetteer()
        current_app.extensions["geocoder"] = found
    return found
