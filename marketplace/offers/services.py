"""Offers: make, revise, withdraw, and who may touch one — each race settled by the database.
Accepting one is part of the need's lifecycle (``lifecycle.accept``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import joinedload

from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.db_types import utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from marketplace.extensions import add_once, commit_as_written, db
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.notifications.outbox import notify
from marketplace.notifications.types import NotificationType
from marketplace.offers import presenters
from marketplace.offers.models import Offer, OfferStatus
from marketplace.pagination import paginate_built
from marketplace.providers import services as providers
from marketplace.providers.models import Provider

HARD_MAX_OFFERS = 200  # per need, when the customer set no cap of their own


def _require_provider(user: User) -> Provider:
    provider = providers.provider_of(user)
    if provider is None:
        raise Forbidden("Set up a provider profile (PUT /api/v1/me/provider) before making offers.")
    if not provider.takes_work and (provider.hidden_at is not None
                                    or user.suspended_at is not None):
        raise Forbidden("Your provider profile was hidden by moderation; you cannot make offers.")
    return provider


def _check_price(need: Need, price: dict[str, Any]) -> None:
    if price["currency"] != need.budget_currency:
        raise Invalid(f"This need is priced in {need.budget_currency}; offer in the same currency.",
                      {"price": {"currency": [f"Must be {need.budget_currency}."]}})


def make(user: User, need_id: int, data: dict[str, Any]) -> Offer:
    """One offer per provider per need; the need's cap and status are checked in one UPDATE."""
    return make_presented(user, need_id, data).offer


def make_presented(user: User, need_id: int, data: dict[str, Any]) -> presenters.OfferView:
    """``make``, answering with the offer as its provider reads it, presented before the
    commit with the customer's event (``presenters.event_and_view``)."""
    provider = _require_provider(user)
    need = needs.get(need_id)
    if need.customer_id == user.id:
        raise Forbidden("You cannot make an offer on your own need.")
    if blocks.is_blocked(need.customer_id, provider.id):  # before anything that reveals it
        raise NotFound("No such need.")
    existing = provider_offer(provider, need)
    if existing is not None:
        if existing.status == OfferStatus.WITHDRAWN:
            raise Conflict("You withdrew your offer on this need; one offer per need, so it "
                           "cannot be made again.")
        raise Conflict("You already made an offer on this need; revise it instead.")
    if not needs.posted_to(provider, need):  # (the block was checked above)
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
    db.session.expire(need, ["offer_count"])  # counted in SQL: read again if it is asked for
    if blocks.is_blocked(need.customer_id, provider.id):  # blocked while we were checking
        db.session.rollback()
        raise NotFound("No such need.")
    offer = Offer(
        need_id=need.id, provider_id=provider.id, price_amount=price["amount"],
        price_currency=price["currency"], message=data.get("message", ""),
        available_at=data.get("available_at"), status=OfferStatus.PENDING,
        created_at=now, updated_at=now,
    )
    add_once(offer, "You already made an offer on this need; revise it instead.")
    event, view = presenters.event_and_view(offer)
    notify([need.customer_id], NotificationType.OFFER_RECEIVED, event)
    commit_as_written()  # the answer is the offer as written
    return view


# asked by every need read of a provider's (their role) and every new offer: built once
_PROVIDER_OFFER = select(Offer).where(Offer.need_id == bindparam("need"),
                                      Offer.provider_id == bindparam("provider"))


def provider_offer(provider: Provider, need: Need) -> Offer | None:
    """``provider``'s offer on ``need``, if they made one (one per provider per need)."""
    return db.session.scalar(_PROVIDER_OFFER, {"need": need.id, "provider": provider.id})


# An offer read alone comes with its need (every caller asks it next) and the need's tags
# joined: one statement, not three.
_WITH_NEED = (joinedload(Offer.need).joinedload(Need.tags),)


def get(offer_id: int) -> Offer:
    offer = db.session.get(Offer, offer_id, options=_WITH_NEED)
    if offer is None or offer.hidden_at is not None or offer.need.hidden_at is not None:
        raise NotFound("No such offer.")
    return offer


def role_on(user: User, offer: Offer) -> str | None:
    """customer (of the need) | provider (who made it) | None."""
    if offer.need.customer_id == user.id:
        return "customer"
    if offer.provider.user_id == user.id:
        return "provider"
    return None


def offer_with_role(user: User, offer_id: int) -> tuple[Offer, str]:
    """The offer and the caller's role on it; a provider the customer has blocked has none."""
    offer = get(offer_id)
    role = role_on(user, offer)
    if role is None or (role == "provider"
                        and blocks.is_blocked(offer.need.customer_id, offer.provider_id)):
        raise NotFound("No such offer.")
    return offer, role


def _own(user: User, offer_id: int, verb: str) -> Offer:
    offer, role = offer_with_role(user, offer_id)
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


def _lock_version(offer: Offer, versions: Collection[str]) -> None:
    """Lock the offer's row (after its need's, the one lock order) and refuse with 412 unless
    its version (``conditional.offer_tag``) is still one of ``versions``: the one the
    request's ``If-Match`` checked before it waited for the lock may be gone by now."""
    current, status = db.session.execute(
        select(Offer.revision, Offer.status).where(Offer.id == offer.id).with_for_update()
    ).one()
    tag = f"{current}-{status.value}"
    if tag not in versions:
        db.session.rollback()
        raise PreconditionFailed(f'The offer changed since you read it: it is now "{tag}".',
                                 {"If-Match": [f'Not the current version ("{tag}").']})


def _set_if_pending(offer: Offer, verb: str, **values: Any) -> None:
    result = db.session.execute(
        update(Offer).where(Offer.id == offer.id, Offer.status == OfferStatus.PENDING)
        .values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise _closed(offer, verb)


def revise(user: User, offer_id: int, data: dict[str, Any],
           if_match: Collection[str] | None = None) -> Offer:
    """With ``if_match`` (the versions an ``If-Match`` named, ``"3-pending"``) the offer is
    revised only if it is still one of them once its row is locked: of two revisions sent
    with the same ETag, the one that waited for the other's lock gets 412, not a silent
    overwrite."""
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
    if if_match is not None:
        _lock_version(offer, if_match)
    _set_if_pending(offer, "revise", **values)
    db.session.refresh(offer)
    notify([offer.need.customer_id], NotificationType.OFFER_REVISED, presenters.event(offer))
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
    notify([offer.need.customer_id], NotificationType.OFFER_WITHDRAWN, presenters.event(offer))
    db.session.commit()
    return offer


# a provider's own offers; a page shows each offer's need: joined (one each), not read by a
# second statement or one per offer; built once, with and without a status
_MINE = (select(Offer).options(joinedload(Offer.need))
         .where(Offer.provider_id == bindparam("provider"), Offer.hidden_at.is_(None)))
_MINE_IN_STATUS = _MINE.where(Offer.status == bindparam("status"))


def mine(user: User, status: str | None, cursor: str | None, limit: int) -> Any:
    provider = _require_provider(user)
    if status:
        return paginate_built(_MINE_IN_STATUS,
                              {"provider": provider.id, "status": OfferStatus(status)},
                              Offer.id, cursor, limit)
    return paginate_built(_MINE, {"provider": provider.id}, Offer.id, cursor, limit)


def mine_on(provider: Provider, need_ids: Sequence[int]) -> dict[int, Offer]:
    """need id -> the provider's own offer on it, for those of ``need_ids`` they offered on."""
    if not need_ids:
        return {}
    return {o.need_id: o for o in db.session.scalars(
        select(Offer).where(Offer.provider_id == provider.id,
                            Offer.need_id.in_(list(need_ids))))}
