"""Needs: posting, who may see what, and the one function every status change goes through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.db_types import utcnow
from marketplace.errors import Forbidden, Invalid, NotFound
from marketplace.extensions import db
from marketplace.geo import (
    cell_distance_km,
    display_km,
    distance_band,
    grid_cell_centre,
    lat_row,
)
from marketplace.geocoding import services as geocoding
from marketplace.needs import feed as feeds
from marketplace.needs.models import Need, NeedStatus
from marketplace.notifications.outbox import jsonable, notify_each
from marketplace.pagination import decode_ranked_cursor, encode_ranked_cursor, paginate
from marketplace.providers import matching
from marketplace.providers import services as providers
from marketplace.providers.models import Provider

MAX_TTL = timedelta(days=30)


def create(user: User, data: dict[str, Any]) -> Need:
    now = utcnow()
    category = providers.category_by_slug(data["category"])
    ttl = timedelta(hours=current_app.config["NEED_DEFAULT_TTL_HOURS"])
    expires_at: datetime = data.get("expires_at") or now + ttl
    if expires_at <= now:
        raise Invalid("expires_at must be in the future.", {"expires_at": ["Must be in the future."]})
    if expires_at > now + MAX_TTL:
        raise Invalid("A need may stay open for at most 30 days.",
                      {"expires_at": ["Must be within 30 days from now."]})
    needed_by = data.get("needed_by")
    if needed_by is not None and needed_by <= now:
        raise Invalid("needed_by must be in the future.", {"needed_by": ["Must be in the future."]})
    location = data["location"]
    place = data.get("place") or None
    if "query" in location:
        found = geocoding.resolve(location["query"])
        location = {"lat": found.lat, "lon": found.lon}
        place = place or found.label
    need = Need(
        customer_id=user.id,
        category_id=category.id,
        title=data["title"],
        description=data.get("description", ""),
        lat=location["lat"],
        lon=location["lon"],
        lat_row=lat_row(location["lat"]),
        place=place,
        address=data.get("address") or None,
        radius_km=data["radius_km"],
        budget_amount=data["budget"]["amount"],
        budget_currency=data["budget"]["currency"],
        needed_by=needed_by,
        expires_at=expires_at,
        max_offers=data.get("max_offers"),
        status=NeedStatus.OPEN,
        offer_count=0,
    )
    db.session.add(need)
    db.session.flush()
    _notify_matched(need)
    db.session.commit()
    return need


def summary(need: Need, base: tuple[float, float] | None = None) -> dict[str, Any]:
    """What a notification says about a need: public fields only, location approximate."""
    cell = grid_cell_centre(need.lat, need.lon)
    band = distance_band(cell_distance_km(*base, need.lat, need.lon)) if base else None
    return {
        "id": need.id, "title": need.title, "category": need.category.slug,
        "status": need.status.value,
        "budget": {"amount": need.budget_amount, "currency": need.budget_currency},
        "location": {"lat": cell.lat, "lon": cell.lon, "approximate": True},
        "place": need.place, "distance_band": band, "needed_by": need.needed_by,
        "expires_at": need.expires_at, "created_at": need.created_at,
    }


def reach(category_id: int, lat: float, lon: float, radius_km: float,
          customer_id: int | None) -> list[matching.Match]:
    """The providers a need with these parameters is posted to: matched, minus the customer
    and anyone the customer blocked."""
    blocked = blocks.blocked_provider_ids(customer_id) if customer_id is not None else set()
    return matching.providers_for(category_id, lat, lon, radius_km,
                                  exclude_user_id=customer_id, exclude_provider_ids=blocked)


def _notify_matched(need: Need) -> None:
    """Every matched provider gets the same event in the same commit: nobody is first.
    The summary is built once; only the distance band differs per provider."""
    shared = jsonable(summary(need))
    cell = grid_cell_centre(need.lat, need.lon)
    notify_each("need.matched", (
        (match.user_id, {"need": {**shared, "distance_band": distance_band(
            display_km(grid_cell_centre(match.lat, match.lon), cell))}})
        for match in reach(need.category_id, need.lat, need.lon, need.radius_km,
                           need.customer_id)
    ))


def get(need_id: int) -> Need:
    need = db.session.get(Need, need_id)
    if need is None:
        raise NotFound("No such need.")
    return need


def _provider_offer(provider: Provider, need: Need) -> Any:
    from marketplace.offers.models import Offer  # offers depend on needs, not the reverse

    return db.session.scalar(
        select(Offer).where(Offer.need_id == need.id, Offer.provider_id == provider.id)
    )


def matches(provider: Provider, need: Need) -> bool:
    """Whether ``need`` was posted to ``provider``: intent is permission."""
    return (
        provider.active
        and provider.user_id != need.customer_id
        and providers.serves(provider, need.category_id)
        and providers.reaches(provider, need.lat, need.lon, need.radius_km)
        and not blocks.is_blocked(need.customer_id, provider.id)
    )


def viewer_role(user: User | None, need: Need) -> str | None:
    """customer | accepted_provider | offering_provider | matched_provider | None (no access)."""
    if user is None:
        return None
    if need.customer_id == user.id:
        return "customer"
    provider = providers.provider_of(user)
    if provider is None or blocks.is_blocked(need.customer_id, provider.id):
        return None
    offer = _provider_offer(provider, need)
    if offer is not None:
        return "accepted_provider" if need.accepted_offer_id == offer.id else "offering_provider"
    if need.status == NeedStatus.OPEN and matches(provider, need):
        return "matched_provider"
    return None


def visible(user: User, need_id: int) -> tuple[Need, str]:
    need = get(need_id)
    role = viewer_role(user, need)
    if role is None:
        raise NotFound("No such need.")
    return need, role


@dataclass
class NeedView:
    """What one viewer may see of a need."""

    need: Need
    role: str
    provider: Provider | None = None

    @property
    def exact(self) -> bool:
        return self.role in ("customer", "accepted_provider")

    def as_dict(self) -> dict[str, Any]:
        need = self.need
        if self.exact:
            location = {"lat": need.lat, "lon": need.lon, "approximate": False}
        else:
            cell = grid_cell_centre(need.lat, need.lon)
            location = {"lat": cell.lat, "lon": cell.lon, "approximate": True}
        band = None
        if self.provider is not None:
            band = distance_band(cell_distance_km(self.provider.base_lat, self.provider.base_lon,
                                                  need.lat, need.lon))
        customer = None
        if self.exact and need.customer is not None:
            customer = {"name": need.customer.name, "email": need.customer.email,
                        "phone": need.customer.phone}
        return {
            "id": need.id,
            "title": need.title,
            "description": need.description,
            "category": need.category.slug,
            "status": need.status.value,
            "location": location,
            "place": need.place,
            "address": need.address if self.exact else None,
            "distance_band": band,
            "radius_km": need.radius_km,
            "budget": {"amount": need.budget_amount, "currency": need.budget_currency},
            "needed_by": need.needed_by,
            "expires_at": need.expires_at,
            "max_offers": need.max_offers,
            "offer_count": need.offer_count,
            "created_at": need.created_at,
            "assigned_at": need.assigned_at,
            "completed_at": need.completed_at,
            "cancelled_at": need.cancelled_at,
            "cancel_reason": need.cancel_reason if self.role != "matched_provider" else None,
            "cancelled_by": _cancelled_by(need),
            "accepted_offer_id": need.accepted_offer_id if self.role == "customer" else None,
            "customer": customer,
            "viewer_role": self.role,
        }


def _cancelled_by(need: Need) -> str | None:
    if need.cancelled_by_id is None:
        return "system" if need.status == NeedStatus.EXPIRED else None
    return "customer" if need.cancelled_by_id == need.customer_id else "provider"


def offerer_view(provider: Provider, need: Need, offer_id: int) -> dict[str, Any]:
    """The need as the provider who made ``offer_id`` sees it, without looking up their role:
    having an offer on it settles that (the accepted one sees the exact place, unless the
    customer has blocked them since)."""
    accepted = need.accepted_offer_id == offer_id and not blocks.is_blocked(need.customer_id,
                                                                          provider.id)
    role = "accepted_provider" if accepted else "offering_provider"
    return NeedView(need, role, provider).as_dict()


def view(user: User, need: Need, role: str) -> dict[str, Any]:
    provider = providers.provider_of(user) if role != "customer" else None
    return NeedView(need, role, provider).as_dict()


def list_mine(user: User, status: str | None, cursor: str | None,
              limit: int) -> tuple[Sequence[Need], str | None]:
    stmt = select(Need).where(Need.customer_id == user.id)
    if status:
        stmt = stmt.where(Need.status == NeedStatus(status))
    return paginate(stmt, Need.id, cursor, limit)


def _feed_provider(user: User) -> Provider:
    provider = providers.provider_of(user)
    if provider is None:
        raise Forbidden("Set up a provider profile (PUT /api/v1/me/provider) to get a feed.")
    return provider


def _feed_views(provider: Provider, slots: Sequence[feeds.Slot]) -> list[dict[str, Any]]:
    from marketplace.offers.models import Offer  # offers depend on needs, not the reverse

    ids = [slot.need_id for slot in slots]
    if not ids:
        return []
    by_id = {n.id: n for n in db.session.scalars(
        select(Need).options(selectinload(Need.category)).where(Need.id.in_(ids)))}
    # Every need here is open and matches, so the role is settled by one query for the
    # provider's offers among them instead of a role lookup per need.
    offered = set(db.session.scalars(select(Offer.need_id).where(
        Offer.provider_id == provider.id, Offer.need_id.in_(ids))))
    return [NeedView(by_id[i], "offering_provider" if i in offered else "matched_provider",
                     provider).as_dict() for i in ids]


def feed(user: User, cursor: str | None = None,
         limit: int = 20) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the open needs that match the calling provider now: nearest distance band
    first, then newest (bands from grid-cell centres, like everything a provider sees), and
    the cursor of the next page. Paged in SQL (``needs.feed``)."""
    provider = _feed_provider(user)
    after = feeds.Slot(*decode_ranked_cursor(cursor, feeds.BANDS)) if cursor else None
    slots, last = feeds.Feed(provider).page(after, limit)
    next_cursor = encode_ranked_cursor(last.band, last.need_id) if last else None
    return _feed_views(provider, slots), next_cursor


def feed_items(user: User, need_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Those of ``need_ids`` that are in the calling provider's feed now, in feed order: what
    the feed page fetches when needs are announced live."""
    provider = _feed_provider(user)
    return _feed_views(provider, feeds.Feed(provider).among(need_ids))
