"""An offer as its reader sees it — the need's customer or the provider who made it — with the
provider's reputation beside it, and the orders a customer can sort offers in.
``OfferOutSchema`` dumps an ``OfferView``; pages render it as it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.util import identity_key

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.geo import band_index, cell_distance_km, distance_band
from marketplace.media import services as media
from marketplace.offers import reputation
from marketplace.offers.models import DeclineReason, Offer
from marketplace.offers.schemas import OfferOutSchema
from marketplace.providers.models import Provider

# Why a declined offer was declined, as each side reads it: a provider is not told of a block.
DECLINED_FOR_CUSTOMER = {
    DeclineReason.OTHER_ACCEPTED: "You accepted another offer.",
    DeclineReason.NEED_CLOSED: "The need closed before this offer was accepted.",
    DeclineReason.BLOCKED: "You blocked this provider.",
}
DECLINED_FOR_PROVIDER = {
    DeclineReason.OTHER_ACCEPTED: "The customer accepted another offer.",
    DeclineReason.NEED_CLOSED: "The need closed before this offer was accepted.",
    DeclineReason.BLOCKED: "The customer declined this offer.",
}


class OfferView:
    """``offer`` for its customer (``for_customer``) or its provider, with ``record``, the
    provider's reputation (``reputation.for_providers``)."""

    __slots__ = ("offer", "record", "for_customer", "km", "like_you", "avatar")

    def __init__(self, offer: Offer, record: dict[str, Any], *, for_customer: bool,
                 like_you: dict[str, Any] | None = None,
                 avatar: dict[str, str] | None = None) -> None:
        self.offer, self.record, self.for_customer = offer, record, for_customer
        self.like_you, self.avatar = like_you, avatar
        provider, need = offer.provider, offer.need
        self.km = cell_distance_km(provider.base_lat, provider.base_lon, need.lat, need.lon)

    def __getattr__(self, name: str) -> Any:
        """Columns both readers see as stored (message, revision, times)."""
        return getattr(self.offer, name)

    @property
    def status(self) -> str:
        return self.offer.status.value

    @property
    def price(self) -> dict[str, Any]:
        return {"amount": self.offer.price_amount, "currency": self.offer.price_currency}

    @property
    def distance_band(self) -> str:
        return distance_band(self.km)

    @property
    def decline_reason(self) -> str | None:
        reasons = DECLINED_FOR_CUSTOMER if self.for_customer else DECLINED_FOR_PROVIDER
        return reasons.get(self.offer.decline_reason) if self.offer.decline_reason else None

    @property
    def provider(self) -> dict[str, Any]:
        provider = self.offer.provider
        return {"handle": provider.handle, "display_name": provider.display_name,
                "avatar": self.avatar,
                "reputation": self.record, "like_you": self.like_you}

    @property
    def score(self) -> float:
        return float(self.record["score"] or 0.0)


def present(offers: Sequence[Offer], *, for_customer: bool = False) -> list[OfferView]:
    """Many offers for their reader, every provider's reputation read in one batch; for the
    customer, with what people like them thought of each provider (one statement per need,
    near the need)."""
    return _present(offers, _Read.of(offers), for_customer=for_customer)


class _Read(NamedTuple):
    """What presenting offers reads besides the offers: their providers' reputations, the
    providers with their users, and the users' avatars."""

    records: dict[int, dict[str, Any]]
    people: dict[int, Provider]
    avatars: dict[int, Any]

    @classmethod
    def of(cls, offers: Sequence[Offer]) -> _Read:
        people = _providers_of(offers)
        return cls(reputation.for_providers([o.provider_id for o in offers]), people,
                   media.avatars_for(p.user for p in people.values()))


def _present(offers: Sequence[Offer], read: _Read, *, for_customer: bool) -> list[OfferView]:
    mine: dict[int, dict[int, dict[str, Any] | None]] = {}
    if for_customer:
        by_need: dict[int, list[Offer]] = {}
        for o in offers:
            by_need.setdefault(o.need_id, []).append(o)
        for group in by_need.values():
            need = group[0].need
            mine[need.id] = reputation.like_you(
                need.customer_id, [o.provider_id for o in group], (need.lat, need.lon))
    return [OfferView(o, read.records[o.provider_id], for_customer=for_customer,
                      like_you=mine[o.need_id][o.provider_id] if for_customer else None,
                      avatar=media.avatar_urls(media.avatar_of(read.people[o.provider_id].user,
                                                               read.avatars)))
            for o in offers]


# the providers with their users joined (each provider has one): one statement, where a
# second one for the users cost as much again; built once, the providers a bound list
_PROVIDERS = (select(Provider).options(joinedload(Provider.user))
              .where(Provider.id.in_(bindparam("ids", expanding=True))))


def _providers_of(offers: Sequence[Offer]) -> dict[int, Provider]:
    """The offers' providers and their users in one statement (later ``offer.provider`` and
    ``provider.user`` come from the session), not two per offer; none for those the session
    holds already, with their users (a new offer's provider, who has just made it)."""
    ids = {o.provider_id for o in offers}
    found = {}
    for pid in ids:
        provider = db.session.identity_map.get(identity_key(Provider, pid))
        if provider is not None and _loaded(provider):
            found[pid] = provider
    missing = sorted(ids - found.keys())
    if missing:
        found.update((p.id, p) for p in db.session.scalars(_PROVIDERS, {"ids": missing}))
    return found


def _loaded(provider: Provider) -> bool:
    """Whether ``provider`` and its user are in the session, neither expired (a commit expires
    both): then presenting reads nothing more of them."""
    state = inspect(provider)
    if state.expired or "user_id" in state.unloaded:
        return False
    user = db.session.identity_map.get(identity_key(User, provider.user_id))
    return user is not None and not inspect(user).expired


def present_one(offer: Offer, *, for_customer: bool = False) -> OfferView:
    return present([offer], for_customer=for_customer)[0]


_ORDERS = {
    "reputation": lambda v: (-v.score, v.offer.price_amount, v.offer.id),
    "price": lambda v: (v.offer.price_amount, -v.score, v.offer.id),
    "distance": lambda v: (band_index(v.km), v.offer.price_amount, v.offer.id),
    "newest": lambda v: (-v.offer.id,),
}


def ordered(views: Sequence[OfferView], sort: str) -> list[OfferView]:
    """``views`` in one of the orders of ``schemas.SORTS`` (each explained to the customer)."""
    return sorted(views, key=_ORDERS[sort])


_OFFER_OUT = OfferOutSchema()  # one instance: building a schema per event cost more than dumping


def event(offer: Offer) -> dict[str, Any]:
    """What the customer is told about an offer: the offer as they see it."""
    return _event(present_one(offer, for_customer=True))


def _event(view: OfferView) -> dict[str, Any]:
    return {"need_id": view.offer.need_id, "offer": _OFFER_OUT.dump(view)}


def event_and_view(offer: Offer) -> tuple[dict[str, Any], OfferView]:
    """``event(offer)`` and the offer as its provider reads it (``present_one``), from one
    read of the provider's reputation, profile and avatar: what a new offer's request needs
    before it commits, instead of reading them again for its answer after the commit."""
    read = _Read.of([offer])
    [as_customer] = _present([offer], read, for_customer=True)
    [as_provider] = _present([offer], read, for_customer=False)
    return _event(as_customer), as_provider
