"""Provider profiles: set-up, lookup, and whether a provider may see a need."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from marketplace.accounts.models import User
from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.extensions import db
from marketplace.providers.matching import sync_coverage
from marketplace.providers.models import HANDLE, Category, ErasedHandle, Provider, ProviderTag
from marketplace.signals.parser import parse_subscription

# The lookups most requests make, built once with bound values (building a statement and its
# cache key cost more than running it).
_ALL_CATEGORIES = select(Category).order_by(Category.name)
# a provider's own requests (the feed, a need read, an offer) ask what it serves: its
# categories come joined, not lazily in a second statement
_PROVIDER_OF = (select(Provider).options(joinedload(Provider.categories))
                .where(Provider.user_id == bindparam("user")))
_BY_HANDLE = select(Provider).where(Provider.handle == bindparam("handle"))


def all_categories() -> Sequence[Category]:
    return db.session.scalars(_ALL_CATEGORIES).all()


def category_by_slug(slug: str, field: str = "category") -> Category:
    category = db.session.scalar(select(Category).where(Category.slug == slug))
    if category is None:
        raise Invalid(f"Unknown category {slug!r}.",
                      {field: [f"Unknown category {slug!r}; see GET /api/v1/categories."]})
    return category


def categories_by_slugs(slugs: Sequence[str]) -> list[Category]:
    wanted = list(dict.fromkeys(slugs))
    found = {c.slug: c for c in db.session.scalars(
        select(Category).where(Category.slug.in_(wanted)))}
    unknown = [s for s in wanted if s not in found]
    if unknown:
        raise Invalid("Unknown categories: " + ", ".join(unknown) + ".",
                      {"categories": [f"Unknown category {s!r}." for s in unknown]})
    return [found[s] for s in wanted]


def provider_of(user: User) -> Provider | None:
    """The user's provider profile. Asked several times in one request (a need page checks
    the role, then presents the need for the provider), it is looked up once per
    transaction: the object found is kept until the transaction ends (a commit expires it
    anyway; a rollback may have undone it) -- a provider's ``user_id`` never changes."""
    kept = db.session.info.get("provider_of")
    if kept is not None and kept[0] is db.session().get_transaction():
        provider = kept[1].get(user.id)
        if provider is not None and inspect(provider).persistent:
            return provider
    provider = db.session.execute(_PROVIDER_OF, {"user": user.id}).unique().scalar()
    if provider is not None:
        transaction = db.session().get_transaction()  # (the lookup may have begun it)
        if kept is None or kept[0] is not transaction:
            kept = db.session.info["provider_of"] = (transaction, {})
        kept[1][user.id] = provider
    return provider


def by_handle(handle: str) -> Provider:
    if not HANDLE.fullmatch(handle.lower()):
        raise NotFound(f"No provider with handle {handle!r}.")
    provider = db.session.scalar(_BY_HANDLE, {"handle": handle.lower()})
    if provider is None or provider.erased_at is not None or provider.hidden_at is not None:
        raise NotFound(f"No provider with handle {handle!r}.")
    return provider


def save_profile(user: User, data: dict[str, Any]) -> Provider:
    """Create or replace the caller's provider profile (PUT semantics)."""
    provider = provider_of(user)
    handle = data["handle"]
    # Check everything before touching the profile, so a refusal leaves nothing half-changed.
    categories = categories_by_slugs(data["categories"])
    taken = db.session.scalar(select(Provider.id).where(Provider.handle == handle))
    if handle.startswith("erased-") or db.session.get(ErasedHandle, ErasedHandle.of(handle)):
        raise Invalid("That handle belonged to a deleted account and cannot be used again.",
                      {"handle": ["That handle belonged to a deleted account and cannot be "
                                  "used again."]})
    if taken is not None and (provider is None or taken != provider.id):
        raise Conflict("That handle is taken.", {"handle": ["That handle is taken."]})
    if provider is None:
        provider = Provider(user_id=user.id)
        db.session.add(provider)
    provider.handle = handle
    provider.display_name = data["display_name"]
    provider.bio = data.get("bio", "")
    provider.base_lat = data["base"]["lat"]
    provider.base_lon = data["base"]["lon"]
    provider.radius_km = data["radius_km"]
    provider.active = data.get("active", True)
    provider.categories = categories
    provider.direct_asks = data.get("direct_asks", True)
    wanted = list(dict.fromkeys(p for p in (parse_subscription(t) for t in data.get("tags", ()))
                                if p is not None))
    kept = {(t.kind, t.tag): t for t in provider.tags}
    provider.tags = [kept.get(pair) or ProviderTag(kind=pair[0], tag=pair[1]) for pair in wanted]
    try:
        db.session.flush()
        sync_coverage(provider)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("That handle is taken.", {"handle": ["That handle is taken."]}) from None
    return provider


def by_handles(handles: Sequence[str]) -> list[Provider]:
    """The providers with these handles (as ``by_handle`` finds them; unknown ones left out)."""
    wanted = [h.lower() for h in handles if HANDLE.fullmatch(h.lower())]
    if not wanted:
        return []
    return list(db.session.scalars(select(Provider).where(
        Provider.handle.in_(wanted), Provider.erased_at.is_(None), Provider.hidden_at.is_(None))))


def serves(provider: Provider, category_id: int) -> bool:
    return any(c.id == category_id for c in provider.categories)

