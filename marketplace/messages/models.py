from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db_types import IDS_NEVER_REUSED, Hideable, UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.media import services as media
from marketplace.media.models import Avatar
from marketplace.offers.models import Offer, OfferStatus


class Message(Hideable, db.Model):
    """One line of the private thread between a need's customer and one offering provider."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_offer_id_id", "offer_id", "id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    offer: Mapped[Offer] = relationship()
    sender: Mapped[User | None] = relationship()

    @property
    def sender_name(self) -> str | None:
        """How the sender is named in the thread, the same to both parties and in every
        payload: a provider by their public display name; the customer by first name until
        this offer is accepted (contact only on acceptance), then in full."""
        if self.sender is None:
            return None
        offer = self.offer
        if self.sender_id != offer.need.customer_id:
            return offer.provider.display_name
        return self.sender.name if offer.status == OfferStatus.ACCEPTED else self.sender.first_name

    @property
    def sender_avatar(self) -> dict[str, str] | None:
        return self.sender_avatar_in(None)

    def sender_avatar_in(self, batch: Mapping[int, Avatar | None] | None) -> dict[str, str] | None:
        """The sender's photo, by the rule of ``sender_name``: a provider's always; the
        customer's only once this offer is accepted (as their full name). ``batch``: the
        thread's avatars read at once (``media.avatars_for``)."""
        if self.sender is None:
            return None
        offer = self.offer
        if self.sender_id == offer.need.customer_id and offer.status != OfferStatus.ACCEPTED:
            return None
        return media.avatar_urls(media.avatar_of(self.sender, batch))
