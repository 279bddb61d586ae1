"""A message as one party of the thread reads it. The customer's words reach the provider with
contact details masked (``contact.for_providers``) until that provider's offer is accepted;
each party reads their own words as written. ``MessageOutSchema`` dumps a ``MessageView``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from marketplace import contact
from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.media import services as media
from marketplace.media.models import Avatar
from marketplace.messages.models import Message
from marketplace.offers.models import OfferStatus


def masked_for_provider(message: Message) -> bool:
    """Whether the provider of the thread reads ``message`` masked: it is the customer's, and
    this offer is not (or no longer) the accepted one."""
    offer = message.offer
    return message.sender_id == offer.need.customer_id and offer.status != OfferStatus.ACCEPTED


def body_for_provider(message: Message) -> str:
    """``message``'s body as the provider of its thread reads it."""
    if not masked_for_provider(message):
        return message.body
    need = message.offer.need
    return contact.for_providers(message.body, need.customer, need.address)


class MessageView:
    """``message`` as ``reader_id`` (a party of its thread) reads it; ``avatars``: the senders'
    pictures read at once for a list (``present``)."""

    __slots__ = ("message", "reader_id", "avatars")

    def __init__(self, message: Message, reader_id: int | None,
                 avatars: Mapping[int, Avatar | None] | None = None) -> None:
        self.message, self.reader_id, self.avatars = message, reader_id, avatars

    def __getattr__(self, name: str) -> Any:
        """Columns both parties see as stored (ids, sender, times)."""
        return getattr(self.message, name)

    @property
    def body(self) -> str:
        message = self.message
        if self.reader_id == message.offer.need.customer_id:
            return message.body
        return body_for_provider(message)


    @property
    def sender_avatar(self) -> dict[str, str] | None:
        return self.message.sender_avatar_in(self.avatars)


def present(messages: Sequence[Message], reader_id: int | None) -> list[MessageView]:
    """Messages for their reader: the senders and their pictures read in one statement each
    (``message.sender`` then comes from the session), however long the thread."""
    ids = sorted({m.sender_id for m in messages if m.sender_id is not None})
    senders = list(db.session.scalars(select(User).where(User.id.in_(ids)))) if ids else []
    avatars = media.avatars_for(senders)
    return [MessageView(m, reader_id, avatars) for m in messages]
