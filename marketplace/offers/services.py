"""Offers: make, revise, withdraw, accept — each race settled by the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.db_types import utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.extensions import db
from marketplace.geo import band_index, cell_distance_km, distance_band
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.notifications.outbox import notify
from marketplace.offers import reputation
from marketplace.offers.models import DeclineReason, Offer, OfferStatus
from marketplace.pagination import paginate
from marketplace.providers import services as providers
from marketplace.providers.models import Provider

HARD_MAX_OFFERS = 200  # per need, when the customer set no cap of their own

SORTS = {
    "reputation": "Best reputation first (Bayesian score, so a few lucky ratings do not outrank "
    "a long good record); equal scores by lower price, then earlier offer.",
    "price": "Lowest price first; equal prices by better reputation.",
    "distance": "Nearest provider first, by distance band; then lower price.",
    "newest": "Most recent offer first.",
}
DEFAULT_SORT = "reputation"


def _require_provider(user: User) -> Provider:
    provider = providers.provider_of(user)
    if provider is None:
        raise Forbidden("Set up a provider profile (PUT /api/v1/me/provider) before making offers.")
    return provider


def _check_price(need: Need, price: dict[str, Any]) -> None:
    if price["currency"] != need.budget_currency:
        raise Invalid(f"This need is priced in {need.budget_currency}; offer in the same currency.",
                      {"price": {"currency": [f"Must be {need.budget_currency}."]}})


def make(user: User, need_id: int, data: dict[str, Any]) -> Offer:
    """One offer per provider per need; the need's cap and status are checked in one UPDATE."""
    provider = _require_provider(user)
    need = needs.get(need_id)
    if need.customer_id == user.id:
        raise Forbidden("You cannot make an offer on your own need.")
    existing = _existing(provider, need)
    if existing is not None:
        if existing.status == OfferStatus.WITHDRAWN:
            raise Conflict("You withdrew your offer on this need; one offer per need, so it "
                           "cannot be made again.")
        raise Conflict("You already made an offer on this need; revise it instead.")
    if not needs.matches(provider, need):
        raise NotFound("No such need.")
    price = data.get("price") or {"amount": need.budget_amount, "currency": need.budget_currency}
    _check_price(need, price)
    now = utcnow()
    counted = db.session.execute(
        update(Need)
        .where(
            Need.id == need.id,
            Need.status == NeedStatus.OPEN,
            Need.expires_at > now,
            Need.offer_count < func.coalesce(Need.max_offers, HARD_MAX_OFFERS),
        )
        .values(offer_count=Need.offer_count + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        db.session.refresh(need)
        if need.status != NeedStatus.OPEN:
            raise Conflict(f"This need is {need.status.value}; it no longer takes offers.")
        if need.expires_at <= now:
            raise Conflict("This need has expired; it no longer takes offers.")
        raise Conflict("This need has all the offers it asked for.")
    if blocks.is_blocked(need.customer_id, provider.id):  # blocked while we were checking
        db.session.rollback()
        raise NotFound("No such need.")
    offer = Offer(
        need_id=need.id, provider_id=provider.id, price_amount=price["amount"],
        price_currency=price["currency"], message=data.get("message", ""),
        available_at=data.get("available_at"), status=OfferStatus.PENDING,
        created_at=now, updated_at=now,
    )
    db.session.add(offer)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("You already made an offer on this need; revise it instead.") from None
    notify([need.customer_id], "offer.received", _event(offer))
    db.session.commit()
    return offer


def _event(offer: Offer) -> dict[str, Any]:
    """What the customer is told about an offer (the offer as they would see it)."""
    data = view(offer, for_customer=True)
    data.pop("_km", None)
    return {"need_id": offer.need_id, "offer": data}


def _existing(provider: Provider, need: Need) -> Offer | None:
    return db.session.scalar(
        select(Offer).where(Offer.need_id == need.id, Offer.provider_id == provider.id)
    )


def get(offer_id: int) -> Offer:
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        raise NotFound("No such offer.")
    return offer


def role_on(user: User, offer: Offer) -> str | None:
    """customer (of the need) | provider (who made it) | None."""
    if offer.need.customer_id == user.id:
        return "customer"
    if offer.provider.user_id == user.id:
        return "provider"
    return None


def visible(user: User, offer_id: int) -> tuple[Offer, str]:
    """The offer and the caller's role on it; a provider the customer has blocked has none."""
    offer = get(offer_id)
    role = role_on(user, offer)
    if role is None or (role == "provider"
                        and blocks.is_blocked(offer.need.customer_id, offer.provider_id)):
        raise NotFound("No such offer.")
    return offer, role


def _own(user: User, offer_id: int, verb: str) -> Offer:
    offer, role = visible(user, offer_id)
    if role != "provider":
        raise Forbidden(f"Only the provider who made this offer can {verb} it.")
    return offer


def _lock_open_need(offer: Offer, verb: str, *, unless_expired: bool = True) -> None:
    """Lock the offer's need row first, as accept/cancel/expire do, so two writers never take
    need and offer rows in opposite orders (a deadlock); the UPDATE also checks it is open."""
    stmt = update(Need).where(Need.id == offer.need_id, Need.status == NeedStatus.OPEN)
    if unless_expired:
        stmt = stmt.where(Need.expires_at > utcnow())
    result = db.session.execute(stmt.values(offer_count=Need.offer_count)
                                .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise _closed(offer, verb)


def _set_if_pending(offer: Offer, verb: str, **values: Any) -> None:
    result = db.session.execute(
        update(Offer).where(Offer.id == offer.id, Offer.status == OfferStatus.PENDING)
        .values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise _closed(offer, verb)


def revise(user: User, offer_id: int, data: dict[str, Any]) -> Offer:
    offer = _own(user, offer_id, "revise")
    if "price" in data:
        _check_price(offer.need, data["price"])
    values: dict[str, Any] = {"updated_at": utcnow(), "revision": Offer.revision + 1}
    if "price" in data:
        values["price_amount"] = data["price"]["amount"]
        values["price_currency"] = data["price"]["currency"]
    for field in ("message", "available_at"):
        if field in data:
            values[field] = data[field]
    _lock_open_need(offer, "revise")
    _set_if_pending(offer, "revise", **values)
    db.session.refresh(offer)
    notify([offer.need.customer_id], "offer.revised", _event(offer))
    db.session.commit()
    return offer


_DONE = {"revise": "revised", "withdraw": "withdrawn"}


def _closed(offer: Offer, verb: str) -> Conflict:
    db.session.refresh(offer)
    db.session.refresh(offer.need)
    done = _DONE[verb]
    if offer.status != OfferStatus.PENDING:
        return Conflict(f"This offer is {offer.status.value}; only a pending offer can be {done}.")
    if offer.need.status == NeedStatus.OPEN:
        return Conflict(f"The need has expired; offers can no longer be {done}.")
    return Conflict(f"The need is {offer.need.status.value}; offers can only be {done} "
                    "while it is open.")


def withdraw(user: User, offer_id: int) -> Offer:
    """Withdrawing from an open need is allowed even past its expiry time (it harms nobody)."""
    offer = _own(user, offer_id, "withdraw")
    _lock_open_need(offer, "withdraw", unless_expired=False)
    _set_if_pending(offer, "withdraw", status=OfferStatus.WITHDRAWN, updated_at=utcnow())
    db.session.execute(update(Need).where(Need.id == offer.need_id)
                       .values(offer_count=Need.offer_count - 1)
                       .execution_options(synchronize_session=False))
    db.session.refresh(offer)
    notify([offer.need.customer_id], "offer.withdrawn", _event(offer))
    db.session.commit()
    return offer


def for_need(user: User, need_id: int) -> tuple[Need, str, list[Offer]]:
    """The customer sees every offer; a provider sees only their own."""
    need, role = needs.visible(user, need_id)
    return need, role, visible_on(user, need, role)


def visible_on(user: User, need: Need, role: str) -> list[Offer]:
    """The offers on ``need`` that ``user``, already known to have ``role`` there, may see."""
    stmt = select(Offer).where(Offer.need_id == need.id)
    if role != "customer":
        provider = providers.provider_of(user)
        assert provider is not None
        stmt = stmt.where(Offer.provider_id == provider.id)
    return list(db.session.scalars(stmt))


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


def view(offer: Offer, record: dict[str, Any] | None = None, *,
         for_customer: bool = False) -> dict[str, Any]:
    """The offer as its reader sees it: the need's customer (``for_customer``) or the
    provider who made it."""
    need = offer.need
    provider = offer.provider
    km = cell_distance_km(provider.base_lat, provider.base_lon, need.lat, need.lon)
    rep = record if record is not None else reputation.for_providers([provider.id])[provider.id]
    return {
        "id": offer.id,
        "need_id": offer.need_id,
        "status": offer.status.value,
        "revision": offer.revision,
        "price": {"amount": offer.price_amount, "currency": offer.price_currency},
        "message": offer.message,
        "available_at": offer.available_at,
        "created_at": offer.created_at,
        "updated_at": offer.updated_at,
        "distance_band": distance_band(km),
        "decline_reason": (DECLINED_FOR_CUSTOMER if for_customer else DECLINED_FOR_PROVIDER)
        .get(offer.decline_reason) if offer.decline_reason else None,
        "provider": {
            "handle": provider.handle,
            "display_name": provider.display_name,
            "reputation": rep,
        },
        "_km": km,
    }


def views(offers: Sequence[Offer], *, for_customer: bool = False) -> list[dict[str, Any]]:
    """Many offers as seen by their readers, with every provider's reputation in one batch."""
    reps = reputation.for_providers([o.provider_id for o in offers])
    return [view(o, reps[o.provider_id], for_customer=for_customer) for o in offers]


def sorted_views(offers: Sequence[Offer], sort: str, *,
                 for_customer: bool = False) -> list[dict[str, Any]]:
    rows = views(offers, for_customer=for_customer)

    def score(v: dict[str, Any]) -> float:
        return float(v["provider"]["reputation"]["score"] or 0.0)

    keys = {
        "reputation": lambda v: (-score(v), v["price"]["amount"], v["id"]),
        "price": lambda v: (v["price"]["amount"], -score(v), v["id"]),
        "distance": lambda v: (band_index(v["_km"]), v["price"]["amount"], v["id"]),
        "newest": lambda v: (-v["id"],),
    }
    return sorted(rows, key=keys[sort])


def mine(user: User, status: str | None, cursor: str | None, limit: int) -> Any:
    provider = _require_provider(user)
    stmt = select(Offer).where(Offer.provider_id == provider.id)
    if status:
        stmt = stmt.where(Offer.status == OfferStatus(status))
    return paginate(stmt, Offer.id, cursor, limit)
