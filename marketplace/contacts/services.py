"""My providers: every provider who made an offer on one of the customer's needs (hired or
not), with the customer's private record of them (``blocks.models.Contact``: note, would hire
again, favourite) and whether they are blocked. Only the customer reads or writes it; a
provider they never dealt with has no record (404, like anything one cannot see)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.models import User
from marketplace.blocks.models import Block, Contact
from marketplace.db_types import utcnow
from marketplace.errors import Invalid, NotFound
from marketplace.extensions import db
from marketplace.needs.models import Need
from marketplace.offers import reputation
from marketplace.offers.models import Offer
from marketplace.pagination import decode_offset_cursor, encode_offset_cursor
from marketplace.providers import services as providers
from marketplace.providers.models import Provider


@dataclass
class MyProvider:
    """One provider as the customer's record shows them (``MyProviderOutSchema`` dumps it)."""

    provider: Provider
    offers: int
    hires: int
    last_dealt_at: datetime
    note: str
    would_hire_again: bool | None
    favourite: bool
    blocked: bool
    reputation: dict[str, Any]

    @property
    def handle(self) -> str:
        return self.provider.handle

    @property
    def display_name(self) -> str:
        return self.provider.display_name


def _dealings(customer_id: int) -> Select[Any]:
    """Per provider who made an offer on one of the customer's needs: offers, hires, latest."""
    hired = case((Need.accepted_offer_id == Offer.id, 1), else_=0)
    return (select(Offer.provider_id, func.count(Offer.id).label("offers"),
                   func.sum(hired).label("hires"), func.max(Offer.updated_at).label("last"))
            .join(Need, Need.id == Offer.need_id)
            .where(Need.customer_id == customer_id)
            .group_by(Offer.provider_id))


def _views(customer_id: int, rows: Sequence[Any]) -> list[MyProvider]:
    ids = [row.provider_id for row in rows]
    if not ids:
        return []
    by_id = {p.id: p for p in db.session.scalars(select(Provider).where(Provider.id.in_(ids)))}
    contacts = {c.provider_id: c for c in db.session.scalars(
        select(Contact).where(Contact.customer_id == customer_id,
                              Contact.provider_id.in_(ids)))}
    blocked = set(db.session.scalars(select(Block.provider_id).where(
        Block.customer_id == customer_id, Block.provider_id.in_(ids))))
    reps = reputation.for_providers(ids)
    out = []
    for row in rows:
        contact = contacts.get(row.provider_id)
        out.append(MyProvider(
            provider=by_id[row.provider_id], offers=row.offers, hires=int(row.hires or 0),
            last_dealt_at=row.last,
            note=contact.note if contact else "",
            would_hire_again=contact.would_hire_again if contact else None,
            favourite=bool(contact and contact.favourite),
            blocked=row.provider_id in blocked, reputation=reps[row.provider_id]))
    return out


def list_mine(user: User, cursor: str | None, limit: int,
              favourites: bool = False) -> tuple[list[MyProvider], str | None]:
    """One page of the customer's providers, most recently dealt with first."""
    deals = _dealings(user.id).subquery()
    stmt = select(deals)
    if favourites:
        stmt = stmt.join(Contact, (Contact.provider_id == deals.c.provider_id)
                         & (Contact.customer_id == user.id)).where(Contact.favourite.is_(True))
    start = decode_offset_cursor(cursor) if cursor else 0
    rows = db.session.execute(stmt.order_by(deals.c.last.desc(), deals.c.provider_id.desc())
                              .offset(start).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return _views(user.id, rows), (encode_offset_cursor(start + limit) if more else None)


def _dealt_with(user: User, handle: str) -> tuple[Provider, Any]:
    try:
        provider = providers.by_handle(handle)
    except NotFound:
        provider = None
    row = None if provider is None else db.session.execute(
        _dealings(user.id).where(Offer.provider_id == provider.id)).first()
    if provider is None or row is None:
        raise NotFound(f"No provider {handle!r} among yours: they have not made you an offer.")
    return provider, row


def get(user: User, handle: str) -> MyProvider:
    _provider, row = _dealt_with(user, handle)
    return _views(user.id, [row])[0]


def has_favourites(user: User) -> bool:
    return db.session.scalar(select(func.count()).select_from(Contact).where(
        Contact.customer_id == user.id, Contact.favourite.is_(True))) > 0


def update(user: User, handle: str, data: dict[str, Any]) -> MyProvider:
    """Set what ``data`` holds of the record (note, would_hire_again, favourite); what it does
    not hold stays. A blocked provider cannot be made a favourite (blocking clears it)."""
    provider, row = _dealt_with(user, handle)
    if data.get("favourite") and db.session.get(Block, (user.id, provider.id)) is not None:
        raise Invalid("You blocked this provider.",
                      {"favourite": ["Unblock this provider before making them a favourite."]})
    for _attempt in range(2):
        contact = db.session.get(Contact, (user.id, provider.id))
        if contact is None:
            contact = Contact(customer_id=user.id, provider_id=provider.id, note="",
                              favourite=False)
            db.session.add(contact)
        for key in ("note", "would_hire_again", "favourite"):
            if key in data:
                setattr(contact, key, data[key])
        contact.updated_at = utcnow()
        try:
            db.session.commit()
            break
        except IntegrityError:  # a parallel first write made the row: write over it
            db.session.rollback()
    return _views(user.id, [row])[0]
