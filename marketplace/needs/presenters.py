"""What one viewer may see of a need: the one place that decides which fields each role gets.
The exact point, the address and the customer's contact go to the customer and the accepted
provider only; everyone else sees the grid cell and a distance band from cell to cell, and the
title and description with contact details masked (``contact.for_providers``).
``NeedOutSchema`` dumps a ``NeedView``; pages render it as it is."""

from __future__ import annotations

from typing import Any

from marketplace import contact
from marketplace.geo import cell_distance_km, distance_band, grid_cell_centre
from marketplace.media import services as media
from marketplace.needs.models import Audience, Need, NeedStatus
from marketplace.needs.schemas import SUMMARY_FIELDS, NeedOutSchema
from marketplace.providers.models import Provider
from marketplace.signals.parser import INTENT, MENTION, TOPIC, Signals, parse

EXACT_ROLES = frozenset({"customer", "accepted_provider"})


class NeedView:
    """``need`` as seen by ``role`` (customer | accepted_provider | offering_provider |
    matched_provider; None for what is published to anyone, such as a notification's summary
    or the share page). ``band`` is the distance band from the viewing provider's cell."""

    __slots__ = ("need", "role", "distance_band", "mentioned", "_signals", "_photos", "_avatars",
                 "_masked")

    def __init__(self, need: Need, role: str | None, band: str | None = None,
                 mentioned: bool = False) -> None:
        self.need, self.role, self.distance_band = need, role, band
        self.mentioned = mentioned
        self._signals: Signals | None = None
        self._photos: list[Any] | None = None  # set by ``prefetch`` for a list of views
        self._avatars: dict[int, Any] | None = None
        self._masked: dict[str, str] = {}  # text as masked, once per view (a page shows it twice)

    @classmethod
    def for_provider(cls, need: Need, role: str, provider: Provider | None) -> NeedView:
        band = None if provider is None else distance_band(
            cell_distance_km(provider.base_lat, provider.base_lon, need.lat, need.lon))
        mentioned = (provider is not None and provider.direct_asks
                     and provider.handle in need.tags_of(MENTION))
        return cls(need, role, band, mentioned)

    def __getattr__(self, name: str) -> Any:
        """Columns every viewer sees as stored (title, description, dates, counts)."""
        return getattr(self.need, name)

    @property
    def exact(self) -> bool:
        return self.role in EXACT_ROLES

    def _text(self, text: str) -> str:
        """Free text of the customer's, masked for anyone they have not chosen."""
        if self.exact:
            return text
        masked = self._masked.get(text)
        if masked is None:
            masked = self._masked[text] = contact.for_providers(text, self.need.customer,
                                                                self.need.address)
        return masked

    @property
    def title(self) -> str:
        return self._text(self.need.title)

    @property
    def description(self) -> str:
        return self._text(self.need.description)

    def _tags(self, kind: str) -> list[str]:
        """The need's stored signals of ``kind``; for a reader the customer has not chosen, only
        those still in the text as they read it (a tag is never a way round the masking of
        contact details: ``?5125550101`` is a phone number)."""
        stored = self.need.tags_of(kind)
        if self.exact or not stored:
            return stored
        if self._signals is None:
            self._signals = parse(self.title, self.description)
        visible = self._signals.of(kind)
        return [t for t in stored if t in visible]

    @property
    def intents(self) -> list[str]:
        return self._tags(INTENT)

    @property
    def topics(self) -> list[str]:
        return self._tags(TOPIC)

    @property
    def mentions(self) -> list[str]:
        return self._tags(MENTION)

    @property
    def viewer_role(self) -> str | None:
        return self.role

    @property
    def category(self) -> str:
        return self.need.category.slug

    @property
    def status(self) -> str:
        return self.need.status.value

    @property
    def budget(self) -> dict[str, Any]:
        return {"amount": self.need.budget_amount, "currency": self.need.budget_currency}

    @property
    def location(self) -> dict[str, Any]:
        need = self.need
        if self.exact:
            return {"lat": need.lat, "lon": need.lon, "approximate": False}
        cell = grid_cell_centre(need.lat, need.lon)
        return {"lat": cell.lat, "lon": cell.lon, "approximate": True}

    @property
    def address(self) -> str | None:
        return self.need.address if self.exact else None

    @property
    def customer(self) -> dict[str, Any] | None:
        person = self.need.customer
        if not self.exact or person is None or person.erased_at is not None:
            return None  # an erased customer has no contact left to give
        return {"name": person.name, "email": person.email, "phone": person.phone,
                "avatar": media.avatar_urls(media.avatar_of(person, self._avatars))}

    @property
    def photos(self) -> list[dict[str, Any]]:
        """Everyone with a role sees the photos; what is published (role None: a
        notification's summary, the share page) does not carry them."""
        if self.role is None:
            return []
        if self._photos is None:  # read once per view (a need page asks in several places)
            self._photos = media.photos_of(self.need.id)
        return [media.photo_urls(p) for p in self._photos]

    @property
    def cancel_reason(self) -> str | None:
        if self.role == "offering_provider":
            return self.cancel_reason_masked
        return self.need.cancel_reason if self.exact else None

    @property
    def cancel_reason_masked(self) -> str | None:
        """The reason as a provider who was not chosen reads it (a customer's words)."""
        reason = self.need.cancel_reason
        return None if reason is None else contact.for_providers(reason, self.need.customer,
                                                                 self.need.address)

    @property
    def cancelled_by(self) -> str | None:
        need = self.need
        if need.cancelled_by_id is None:
            return "system" if need.status == NeedStatus.EXPIRED else None
        return "customer" if need.cancelled_by_id == need.customer_id else "provider"

    @property
    def audience(self) -> str | None:
        return self.need.audience.value if self.role == "customer" else None

    @property
    def direct(self) -> bool:
        """Sent directly: only a recipient (or the customer) can see such a need at all, so
        for them this is the whole truth; what is published (role None) never says it."""
        return self.role is not None and (self.need.audience == Audience.FAVOURITES
                                          or (self.mentioned and self.role != "customer"))

    @property
    def accepted_offer_id(self) -> int | None:
        return self.need.accepted_offer_id if self.role == "customer" else None


def prefetch(views: list[NeedView]) -> list[NeedView]:
    """``views`` with what a list of them shows read at once: every need's photos in one
    statement and the customers' avatars (for the views that show the customer) in another,
    instead of two statements per need."""
    photos = media.photos_for(v.need.id for v in views if v.role is not None)
    people = [v.need.customer for v in views if v.exact]
    avatars = media.avatars_for(people) if people else {}
    for view in views:
        view._photos = photos.get(view.need.id, [])
        view._avatars = avatars
    return views


_SUMMARY = NeedOutSchema(only=SUMMARY_FIELDS)


def summary(need: Need) -> dict[str, Any]:
    """What a notification says about a need: the published fields only, as JSON."""
    return _SUMMARY.dump(NeedView(need, None))
