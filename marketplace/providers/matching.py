"""The spatial matching query: which providers a need is posted to, and which open needs a
provider can see. Both read an index-backed box (``geo.search_box``) and then apply the exact
great-circle rule, so results equal a brute-force check of every provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select

from marketplace.extensions import db
from marketplace.geo import SearchBox, haversine_km, lat_row, search_box
from marketplace.providers.models import Provider, ProviderCoverage


def box_filter(box: SearchBox, row_col: Any, lon_col: Any) -> Any:
    lon_clause = or_(*(lon_col.between(lo, hi) for lo, hi in box.lon_ranges))
    return and_(row_col.in_(box.rows), lon_clause)


@dataclass(frozen=True)
class Match:
    provider_id: int
    user_id: int
    lat: float
    lon: float


def providers_for(category_id: int, lat: float, lon: float, radius_km: float,
                  exclude_user_id: int | None = None,
                  exclude_provider_ids: frozenset[int] | set[int] = frozenset()) -> list[Match]:
    """Active providers serving the category whose own radius covers the point and whose base
    lies within ``radius_km`` of it. The need's radius bounds the search box."""
    box = search_box(lat, lon, radius_km)
    stmt = select(ProviderCoverage.provider_id, ProviderCoverage.user_id, ProviderCoverage.lat,
                  ProviderCoverage.lon, ProviderCoverage.radius_km).where(
        ProviderCoverage.category_id == category_id,
        box_filter(box, ProviderCoverage.lat_row, ProviderCoverage.lon),
    )
    if exclude_user_id is not None:
        stmt = stmt.where(ProviderCoverage.user_id != exclude_user_id)
    matched = []
    for pid, uid, plat, plon, pradius in db.session.execute(stmt):
        km = haversine_km(plat, plon, lat, lon)
        if km <= pradius and km <= radius_km and pid not in exclude_provider_ids:
            matched.append(Match(pid, uid, plat, plon))
    return matched


def sync_coverage(provider: Provider) -> None:
    """Rewrite the provider's index rows from the profile (in the caller's transaction)."""
    db.session.execute(
        ProviderCoverage.__table__.delete().where(ProviderCoverage.provider_id == provider.id)
    )
    if provider.active:
        db.session.add_all(
            ProviderCoverage(provider_id=provider.id, user_id=provider.user_id, category_id=c.id,
                             lat_row=lat_row(provider.base_lat), lat=provider.base_lat,
                             lon=provider.base_lon, radius_km=provider.radius_km)
            for c in provider.categories
        )
