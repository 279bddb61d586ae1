"""The private thread between a need's customer and one provider who made an offer."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.errors import Conflict
from marketplace.extensions import commit_as_written, db
from marketplace.messages.models import Message
from marketplace.messages.presenters import MessageView, body_for_provider, present
from marketplace.notifications.outbox import notify
from marketplace.notifications.types import NotificationType
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus
from marketplace.pagination import paginate

OPEN_THREAD = (OfferStatus.PENDING, OfferStatus.ACCEPTED)


def thread(user: User, offer_id: int, cursor: str | None,
           limit: int) -> tuple[Offer, Sequence[Message], str | None]:
    offer, _role = offers.offer_with_role(user, offer_id)
    items, next_cursor = paginate(select(Message).where(Message.offer_id == offer.id,
                                                        Message.hidden_at.is_(None)),
                                  Message.id, cursor, limit)
    return offer, items, next_cursor


def send(user: User, offer_id: int, body: str) -> Message:
    offer, role = offers.offer_with_role(user, offer_id)
    if blocks.is_blocked(offer.need.customer_id, offer.provider_id):
        raise Conflict("You blocked this provider; unblock them to write to them again.")
    if offer.status not in OPEN_THREAD:
        raise Conflict(f"This offer is {offer.status.value}; its thread is closed.")
    message = Message(offer_id=offer.id, sender_id=user.id, body=body)
    db.session.add(message)
    db.session.flush()
    other = offer.provider.user_id if role == "customer" else offer.need.customer_id
    # The recipient's copy: a provider reads the customer's words masked until acceptance.
    shown = body_for_provider(message) if role == "customer" else body
    notify([other], NotificationType.MESSAGE_RECEIVED, {
        "offer_id": offer.id, "need_id": offer.need_id, "message_id": message.id,
        "from": role, "sender_name": message.sender_name, "body": shown,
        "created_at": message.created_at,
    })
    commit_as_written()  # the answer is the message as written
    return message


def threads_of(offer_ids: Sequence[int], reader_id: int) -> dict[int, list[MessageView]]:
    """Every message of each offer's thread, oldest first, as ``reader_id`` reads it (for a
    page that shows the threads of offers its reader may already see)."""
    threads: dict[int, list[MessageView]] = {i: [] for i in offer_ids}
    if offer_ids:
        rows = list(db.session.scalars(
            select(Message).where(Message.offer_id.in_(list(offer_ids)),
                                  Message.hidden_at.is_(None)).order_by(Message.id)))
        for view in present(rows, reader_id):
            threads[view.message.offer_id].append(view)
    return threads
