"""Ratings: the provider's one public reply, and listing a provider's ratings. Rating a job is
part of its lifecycle (``lifecycle.rate``); what ratings add up to is ``offers.reputation``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from marketplace.accounts.models import User
from marketplace.db_types import utcnow
from marketplace.errors import Conflict, Forbidden, NotFound
from marketplace.extensions import db
from marketplace.notifications.outbox import notify
from marketplace.notifications.types import NotificationType
from marketplace.pagination import paginate
from marketplace.ratings.models import Rating


def reply(user: User, rating_id: int, body: str) -> Rating:
    rating = get(rating_id)
    if rating.provider.user_id != user.id:
        raise Forbidden("Only the rated provider may reply to a rating.")
    result = db.session.execute(
        update(Rating).where(Rating.id == rating.id, Rating.reply.is_(None))
        .values(reply=body, replied_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise Conflict("You already replied to this rating.")
    db.session.refresh(rating)
    notify([rating.customer_id], NotificationType.RATING_REPLIED, {
        "rating_id": rating.id, "need_id": rating.need_id, "provider": rating.provider.handle,
        "reply": rating.reply})
    db.session.commit()
    return rating


def for_provider(provider_id: int, cursor: str | None,
                 limit: int) -> tuple[Sequence[Rating], str | None]:
    return paginate(select(Rating).where(Rating.provider_id == provider_id,
                                       Rating.hidden_at.is_(None)), Rating.id,
                    cursor, limit)


def get(rating_id: int) -> Rating:
    rating = db.session.get(Rating, rating_id)
    if rating is None or rating.hidden_at is not None:
        raise NotFound("No such rating.")
    return rating


def of_needs(need_ids: Sequence[int]) -> dict[int, Rating]:
    """need id -> its rating, for those of ``need_ids`` that were rated (one per need)."""
    if not need_ids:
        return {}
    return {r.need_id: r for r in db.session.scalars(
        select(Rating).where(Rating.need_id.in_(list(need_ids)), Rating.hidden_at.is_(None)))}
