"""The life of a need and its offers together: accepting one offer (and declining the rest),
cancelling, completing, expiring, rating the finished job, and a block that ends every open
dealing. These are the rules that touch a need and its offers at once, so they sit above
``needs`` and ``offers`` and take their rows in one order: the need row first (the
conditional UPDATE of ``transition`` or an explicit lock), then its offers — two writers
never hold them in opposite orders.

Every status change of a need goes through ``transition``: ``TRANSITIONS`` says who may make
it, and one conditional ``UPDATE ... WHERE status = <source>`` settles races in the database
(409 when another request got there first).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from marketplace import access
from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.db_types import utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.extensions import add_once, db
from marketplace.money import format_money
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.needs.presenters import NeedView, summary
from marketplace.notifications.outbox import notify, signal
from marketplace.notifications.types import NotificationType
from marketplace.offers import services as offers
from marketplace.offers.models import DeclineReason, Offer, OfferStatus
from marketplace.offers.presenters import DECLINED_FOR_PROVIDER
from marketplace.providers import services as providers
from marketplace.providers.models import Provider
from marketplace.ratings.models import SUB_SCORES, Rating, near_tile

# (from, to) -> who may make that change. "system" is the expiry job.


TRANSITIONS: dict[tuple[NeedStatus, NeedStatus], frozenset[str]] = {
    (NeedStatus.OPEN, NeedStatus.ASSIGNED): frozenset({"customer"}),
    (NeedStatus.OPEN, NeedStatus.CANCELLED): frozenset({"customer"}),
    (NeedStatus.OPEN, NeedStatus.EXPIRED): frozenset({"system"}),
    (NeedStatus.ASSIGNED, NeedStatus.COMPLETED): frozenset({"customer"}),
    (NeedStatus.ASSIGNED, NeedStatus.CANCELLED): frozenset({"customer", "provider"}),
}


_VERBS = {
    NeedStatus.ASSIGNED: "accept an offer on",
    NeedStatus.CANCELLED: "cancel",
    NeedStatus.COMPLETED: "complete",
    NeedStatus.EXPIRED: "expire",
}


def allowed_from(to: NeedStatus) -> list[NeedStatus]:
    return [a for (a, b) in TRANSITIONS if b == to]


def transition(need: Need, to: NeedStatus, role: str, *, unless_expired: bool = False,
               **values: Any) -> None:
    """Move ``need`` to ``to`` if ``role`` may, by a conditional UPDATE on its current status.

    Does not commit: the caller finishes the unit of work. Raises Forbidden when the role may
    never do this and Conflict when the need is (or has just become) in the wrong state.
    """
    source = need.status
    verb = _VERBS[to]
    roles = {r for (a, b), rs in TRANSITIONS.items() if b == to for r in rs}
    if role not in roles:
        people = sorted(roles - {"system"})
        if not people:
            raise Forbidden(f"Nobody can {verb} a need; it happens on its own.")
        raise Forbidden(f"Only the {' or '.join(people)} may {verb} this need.")
    allowed = TRANSITIONS.get((source, to))
    if allowed is None or role not in allowed:
        states = ", ".join(s.value for s in allowed_from(to) if role in TRANSITIONS[(s, to)])
        raise Conflict(f"This need is {source.value}; you can only {verb} a need that is {states}.")
    stmt = update(Need).where(Need.id == need.id, Need.status == source)
    if unless_expired:
        stmt = stmt.where(Need.expires_at > utcnow())
    result = db.session.execute(
        stmt.values(status=to, **values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        db.session.refresh(need)
        if unless_expired and need.status == source:
            raise Conflict(f"This need has expired; you can no longer {verb} it.")
        raise Conflict(f"This need changed while you were looking at it; you can no longer {verb} it.")
    db.session.refresh(need)
    if source == NeedStatus.OPEN:
        _signal_closed(need)


def _signal_closed(need: Need) -> None:
    """Tell every provider the need was posted to that it no longer takes offers, so open
    feeds drop it at once (live only: the feed itself is always computed afresh)."""
    signal([m.user_id for m in needs.reach(need.category_id, need.lat, need.lon, need.radius_km,
                                     need.customer_id)],
           "need.closed", {"need_id": need.id, "status": need.status.value})


def _offering_users(need: Need) -> dict[int, int]:
    """offer id -> provider user id, for offers still pending or accepted."""
    rows = db.session.execute(
        select(Offer.id, Provider.user_id).join(Provider, Offer.provider_id == Provider.id)
        .where(Offer.need_id == need.id,
               Offer.status.in_([OfferStatus.PENDING, OfferStatus.ACCEPTED]))
    )
    return {offer_id: user_id for offer_id, user_id in rows}


def _decline_pending(need: Need) -> None:
    db.session.execute(
        update(Offer)
        .where(Offer.need_id == need.id, Offer.status == OfferStatus.PENDING)
        .values(status=OfferStatus.DECLINED, decline_reason=DeclineReason.NEED_CLOSED,
                updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def cancel(user: User, need_id: int, reason: str | None) -> Need:
    need, role = access.need_with_role(user, need_id)
    actor = {"customer": "customer", "accepted_provider": "provider"}.get(role)
    if actor is None:
        raise Forbidden("Only the customer or the accepted provider may cancel this need.")
    if need.status == NeedStatus.ASSIGNED and not reason:
        raise Invalid("Say why you are cancelling an assigned job.",
                      {"reason": ["Required when cancelling an assigned job."]})
    offering = _offering_users(need)
    transition(need, NeedStatus.CANCELLED, actor, cancelled_at=utcnow(),
               cancelled_by_id=user.id, cancel_reason=reason or None)
    _decline_pending(need)
    published = summary(need)
    # The customer's reason reaches a provider they did not choose with contact masked.
    masked = NeedView(need, None).cancel_reason_masked
    for offer_id, uid in [(None, need.customer_id), *offering.items()]:
        if uid is None or uid == user.id:
            continue
        exact = offer_id is None or offer_id == need.accepted_offer_id
        notify([uid], NotificationType.NEED_CANCELLED,
               {"need": published, "cancelled_by": actor,
                "reason": need.cancel_reason if exact else masked})
    db.session.commit()
    return need


def edit(user: User, need_id: int, data: dict[str, Any],
         precondition: Callable[[Need], None] | None = None) -> Need:
    """The customer changes an open need's text, budget or dates (``needs.edit``); every
    provider with a pending offer on it is told (``need.updated``), and a provider it newly
    @mentions, or who subscribes to a tag it newly has and is in reach, is sent it
    (``needs.tell_new_recipients``). ``precondition`` sees the need as it is before the
    change, under the need row's lock where the database has one (the API's ``If-Match``)."""
    need, role = access.need_with_role(user, need_id)
    if role != "customer":
        raise Forbidden("Only the customer may edit this need.")
    need = db.session.scalars(select(Need).where(Need.id == need.id).with_for_update()
                              .execution_options(populate_existing=True)).one()
    if precondition is not None:
        precondition(need)
    edited = needs.edit(user, need, data)
    offering = set(_offering_users(need).values())
    notify(sorted(offering), NotificationType.NEED_UPDATED, {"need": summary(need)})
    needs.tell_new_recipients(need, edited, offering)
    db.session.commit()
    return need


def complete(user: User, need_id: int) -> Need:
    need, role = access.need_with_role(user, need_id)
    transition(need, NeedStatus.COMPLETED, "customer" if role == "customer" else "provider",
               completed_at=utcnow())
    notify([uid for uid in _offering_users(need).values()], NotificationType.NEED_COMPLETED,
           {"need": summary(need)})
    db.session.commit()
    return need


def expire_due(now: datetime | None = None) -> list[int]:
    """Expire every open need past its ``expires_at``; returns their ids."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Need).where(Need.status == NeedStatus.OPEN, Need.expires_at <= now)
    ).all()
    expired: list[int] = []
    for need in due:
        offering = _offering_users(need)
        try:
            transition(need, NeedStatus.EXPIRED, "system")
        except Conflict:
            continue  # accepted or cancelled a moment ago: it is no longer ours to expire
        _decline_pending(need)
        notify([need.customer_id, *offering.values()], NotificationType.NEED_EXPIRED, {"need": summary(need)})
        db.session.commit()
        expired.append(need.id)
    return expired


def _revised(offer: Offer, seen: int) -> Conflict:
    return Conflict(
        f"The provider revised this offer after you saw it (you saw revision {seen}; it is now "
        f"revision {offer.revision}, {format_money(offer.price_amount, offer.price_currency)})."
        " Review the new terms and accept again.",
        {"revision": [f"Must be the offer's current revision, {offer.revision}."]},
    )


def accept(user: User, offer_id: int, revision: int | None = None) -> Offer:
    """Exactly one acceptance wins: the need moves open->assigned by a conditional UPDATE,
    the offer pending->accepted by another, and a partial unique index backs both. With
    ``revision`` the offer is accepted only if nobody revised it since the customer saw it."""
    offer, role = offers.offer_with_role(user, offer_id)
    if role != "customer":
        raise Forbidden("Only the customer who posted this need can accept an offer on it.")
    if offer.status != OfferStatus.PENDING:
        raise Conflict(f"This offer is {offer.status.value}; only a pending offer can be accepted.")
    if revision is not None and offer.revision != revision:
        raise _revised(offer, revision)
    need = offer.need
    now = utcnow()
    transition(need, NeedStatus.ASSIGNED, "customer", unless_expired=True,
                     accepted_offer_id=offer.id, assigned_at=now)
    stmt = update(Offer).where(Offer.id == offer.id, Offer.status == OfferStatus.PENDING)
    if revision is not None:
        stmt = stmt.where(Offer.revision == revision)
    result = db.session.execute(stmt.values(status=OfferStatus.ACCEPTED, updated_at=now)
                                .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        db.session.refresh(offer)
        if offer.status == OfferStatus.PENDING and revision is not None:
            raise _revised(offer, revision)
        raise Conflict("This offer was withdrawn a moment ago; it can no longer be accepted.")
    declined = db.session.execute(
        select(Offer.id, Provider.user_id).join(Provider, Offer.provider_id == Provider.id)
        .where(Offer.need_id == need.id, Offer.id != offer.id,
               Offer.status == OfferStatus.PENDING)
    ).all()
    db.session.execute(
        update(Offer)
        .where(Offer.need_id == need.id, Offer.id != offer.id,
               Offer.status == OfferStatus.PENDING)
        .values(status=OfferStatus.DECLINED, decline_reason=DeclineReason.OTHER_ACCEPTED,
                updated_at=now)
        .execution_options(synchronize_session=False)
    )
    published = summary(need)
    notify([offer.provider.user_id], NotificationType.OFFER_ACCEPTED,
           {"offer_id": offer.id, "need": published})
    for declined_id, user_id in declined:
        notify([user_id], NotificationType.OFFER_DECLINED,
               {"offer_id": declined_id, "need": published,
                "reason": "Another offer was accepted."})
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("Another offer on this need was accepted a moment ago.") from None
    db.session.refresh(offer)
    return offer


def block(user: User, handle: str) -> Provider:
    """Block a provider, ending every open dealing between the two in the same transaction:
    their pending offers on the customer's open needs are declined (each frees its slot), a
    job assigned to them is cancelled by the customer, and from then on they cannot see the
    customer's needs, offers or threads (blocks.is_blocked is read by every access rule).
    Idempotent: blocking twice is the same as once.

    Every open or assigned need of the customer is locked first, in id order, so an accept or
    a new offer racing with the block either commits before it (and is undone here) or waits
    and then sees the block (``make`` checks it again under the need's lock)."""
    provider = providers.by_handle(handle)
    if provider.user_id == user.id:
        raise Forbidden("You cannot block yourself.")
    try:
        if not blocks.add(user, provider):
            return provider
    except IntegrityError:
        db.session.rollback()  # a parallel request blocked them first: the same outcome
        return provider
    locked = db.session.scalars(
        select(Need.id).where(Need.customer_id == user.id,
                              Need.status.in_([NeedStatus.OPEN, NeedStatus.ASSIGNED]))
        .order_by(Need.id).with_for_update()
    ).all()
    now = utcnow()
    dealings = db.session.execute(
        select(Offer, Need).join(Need, Offer.need_id == Need.id)
        .where(Offer.provider_id == provider.id, Need.id.in_(locked),
               ((Offer.status == OfferStatus.PENDING) & (Need.status == NeedStatus.OPEN))
               | ((Offer.status == OfferStatus.ACCEPTED) & (Need.status == NeedStatus.ASSIGNED)))
        .order_by(Need.id)
        .execution_options(populate_existing=True)
    ).all()
    for offer, need in dealings:
        if offer.status == OfferStatus.ACCEPTED:
            transition(need, NeedStatus.CANCELLED, "customer", cancelled_at=now,
                             cancelled_by_id=user.id,
                             cancel_reason="The customer blocked the provider.")
            notify([provider.user_id], NotificationType.NEED_CANCELLED,
                   {"need": summary(need), "cancelled_by": "customer", "reason": None})
            continue
        offer.status, offer.decline_reason, offer.updated_at = \
            OfferStatus.DECLINED, DeclineReason.BLOCKED, now
        need.offer_count -= 1
        notify([provider.user_id], NotificationType.OFFER_DECLINED,
               {"offer_id": offer.id, "need": summary(need),
                "reason": DECLINED_FOR_PROVIDER[DeclineReason.BLOCKED]})
    db.session.commit()
    return provider


def rate(user: User, need_id: int, data: dict[str, Any]) -> Rating:
    need = db.session.get(Need, need_id)
    if need is None or need.customer_id != user.id:
        if need is not None and need.accepted_offer_id is not None:
            accepted = db.session.get(Offer, need.accepted_offer_id)
            if accepted is not None and accepted.provider.user_id == user.id:
                raise Forbidden("Only the customer rates a job; you may reply to their rating.")
        raise NotFound("No such need.")
    if need.status != NeedStatus.COMPLETED:
        raise Conflict(f"This need is {need.status.value}; only a completed job can be rated.")
    accepted = db.session.get(Offer, need.accepted_offer_id) if need.accepted_offer_id else None
    if accepted is None:
        raise Conflict("This job has no accepted provider to rate.")
    scores = data.get("scores") or {}
    near_row, near_col = near_tile(need.lat, need.lon)
    rating = Rating(
        need_id=need.id, provider_id=accepted.provider_id, customer_id=user.id,
        stars=data["stars"], comment=data.get("comment", ""), near_row=near_row,
        near_col=near_col,
        **{name: scores.get(name) for name in SUB_SCORES},
    )
    add_once(rating, "You already rated this job.")
    notify([accepted.provider.user_id], NotificationType.RATING_RECEIVED, {
        "rating_id": rating.id, "need_id": need.id, "title": need.title, "stars": rating.stars,
        "comment": rating.comment})
    db.session.commit()
    return rating
