"""Block and unblock providers; the matching and access rules read ``blocked_*``. A
customer's favourites (``Contact.favourite``) are read here too, for posting a need to them:
a blocked provider is never a favourite."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, select, update

from marketplace.accounts.models import User
from marketplace.blocks.models import Block, Contact
from marketplace.extensions import db, rows
from marketplace.providers import services as providers
from marketplace.providers.models import Provider


def add(user: User, provider: Provider) -> bool:
    """Record the block in the caller's transaction; False when it was there already. Ending
    the dealings it cuts off is ``offers.services.block``'s work."""
    if db.session.get(Block, (user.id, provider.id)) is not None:
        return False
    db.session.add(Block(customer_id=user.id, provider_id=provider.id))
    db.session.execute(update(Contact).where(Contact.customer_id == user.id,
                                             Contact.provider_id == provider.id)
                       .values(favourite=False))
    db.session.flush()
    return True


def unblock(user: User, handle: str) -> None:
    provider = providers.by_handle(handle)
    db.session.execute(delete(Block).where(Block.customer_id == user.id,
                                           Block.provider_id == provider.id))
    db.session.commit()


def blocked_by(user: User) -> Sequence[Provider]:
    return db.session.scalars(
        select(Provider).join(Block, Block.provider_id == Provider.id)
        .where(Block.customer_id == user.id).order_by(Provider.handle)
    ).all()


# Asked on most requests (a need read, an offer, a message, a fan-out, a feed), so built once
# with bound values: building a statement and its cache key costs more than running it (a
# ``session.get`` that finds no row builds its own each time).
_BLOCKED = select(Block.provider_id).where(Block.customer_id == bindparam("customer"),
                                           Block.provider_id == bindparam("provider"))
_BLOCKED_BY = select(Block.provider_id).where(Block.customer_id == bindparam("customer"))
_BLOCKING = select(Block.customer_id).where(Block.provider_id == bindparam("provider"))


def is_blocked(customer_id: int | None, provider_id: int) -> bool:
    if customer_id is None:
        return False
    return rows(_BLOCKED, {"customer": customer_id,
                           "provider": provider_id}).scalar() is not None


def blocked_provider_ids(customer_id: int) -> set[int]:
    return set(rows(_BLOCKED_BY, {"customer": customer_id}).scalars())


def customers_blocking(provider_id: int) -> set[int]:
    return set(rows(_BLOCKING, {"provider": provider_id}).scalars())


def favourite_providers(customer_id: int) -> Sequence[Provider]:
    """The customer's favourite providers who take work now (active), minus any they
    blocked: whom a need sent to favourites goes to."""
    return db.session.scalars(
        select(Provider).join(Contact, Contact.provider_id == Provider.id)
        .where(Contact.customer_id == customer_id, Contact.favourite.is_(True),
               Provider.active.is_(True), Provider.user_id != customer_id,
               Provider.hidden_at.is_(None),
               Provider.user_id.not_in(select(User.id).where(User.suspended_at.is_not(None))),
               Provider.id.not_in(select(Block.provider_id)
                                  .where(Block.customer_id == customer_id)))
        .order_by(Provider.id)
    ).all()
