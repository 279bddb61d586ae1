"""Who sees what of a need: each viewer's role on it, and the view that role gets. Every page,
API route and socket payload about a need asks here, so the rules are in one place.

A role comes from the viewer's relation to the need: its customer; the provider whose offer
was accepted; a provider with another offer on it; a provider it was posted to (matched, while
it is open); or none — and no role means 404, as if the need did not exist. A provider the
customer blocked has no role on any of their needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.errors import Forbidden, NotFound
from marketplace.extensions import db, rows
from marketplace.media import services as media
from marketplace.media.models import MediaBlob, NeedPhoto
from marketplace.needs import feed as feeds
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.needs.presenters import NeedView, prefetch
from marketplace.offers import services as offers
from marketplace.offers.models import Offer
from marketplace.pagination import decode_ranked_cursor, encode_ranked_cursor
from marketplace.providers import services as providers
from marketplace.providers.models import Provider


def viewer_role(user: User | None, need: Need) -> str | None:
    """customer | accepted_provider | offering_provider | matched_provider | None (no access)."""
    if user is None:
        return None
    if need.customer_id == user.id:
        return "customer"
    provider = providers.provider_of(user)
    if provider is None or blocks.is_blocked(need.customer_id, provider.id):
        return None
    offer = offers.provider_offer(provider, need)
    if offer is not None:
        return "accepted_provider" if need.accepted_offer_id == offer.id else "offering_provider"
    if need.status == NeedStatus.OPEN and needs.posted_to(provider, need):  # (not blocked: above)
        return "matched_provider"
    return None


def need_with_role(user: User, need_id: int) -> tuple[Need, str]:
    """The need and the caller's role on it; NotFound when they have none."""
    need = needs.get(need_id)
    role = viewer_role(user, need)
    if role is None:
        raise NotFound("No such need.")
    return need, role


def need_view(user: User, need: Need, role: str) -> NeedView:
    """``need`` as ``user``, whose ``role`` is known, sees it (a provider with their band)."""
    provider = providers.provider_of(user) if role != "customer" else None
    return NeedView.for_provider(need, role, provider)


def need_views(user: User, items: Sequence[Need], role: str) -> list[NeedView]:
    """``need_view`` of each of ``items``, all with ``role``, their photos and avatars read at
    once (``presenters.prefetch``)."""
    provider = providers.provider_of(user) if role != "customer" else None
    return prefetch([NeedView.for_provider(need, role, provider) for need in items])


def offerer_view(provider: Provider, need: Need, offer_id: int) -> NeedView:
    """The need as the provider who made ``offer_id`` sees it, without looking up their role:
    having an offer on it settles that (the accepted one sees the exact place, unless the
    customer has blocked them since)."""
    accepted = need.accepted_offer_id == offer_id and not blocks.is_blocked(need.customer_id,
                                                                          provider.id)
    role = "accepted_provider" if accepted else "offering_provider"
    return NeedView.for_provider(need, role, provider)


def _feed_provider(user: User) -> Provider:
    provider = providers.provider_of(user)
    if provider is None:
        raise Forbidden("Set up a provider profile (PUT /api/v1/me/provider) to get a feed.")
    return provider


# a feed page's needs with their category, customer and tags joined: one statement (the tags'
# select-in load was a second), built once
_FEED_NEEDS = (select(Need)
               .options(joinedload(Need.category), joinedload(Need.customer),
                        joinedload(Need.tags))
               .where(Need.id.in_(bindparam("ids", expanding=True))))


_OFFERED = select(Offer.need_id).where(Offer.provider_id == bindparam("provider"),
                                       Offer.need_id.in_(bindparam("ids", expanding=True)))


def _feed_views(provider: Provider, slots: Sequence[feeds.Slot]) -> list[NeedView]:
    ids = [slot.need_id for slot in slots]
    if not ids:
        return []
    by_id = {n.id: n for n in db.session.scalars(_FEED_NEEDS, {"ids": ids}).unique()}
    # Every need here is open and matches, so the role is settled by one query for the
    # provider's offers among them instead of a role lookup per need.
    offered = set(rows(_OFFERED, {"provider": provider.id, "ids": ids}).scalars())
    return prefetch([NeedView.for_provider(by_id[i], "offering_provider" if i in offered
                                           else "matched_provider", provider) for i in ids])


def feed(user: User, cursor: str | None = None,
         limit: int = 20) -> tuple[list[NeedView], str | None]:
    """One page of the open needs that match the calling provider now: nearest distance band
    first, then newest (bands from grid-cell centres, like everything a provider sees), and
    the cursor of the next page. Paged in SQL (``needs.feed``)."""
    provider = _feed_provider(user)
    after = feeds.Slot(*decode_ranked_cursor(cursor, feeds.BANDS)) if cursor else None
    slots, last = feeds.Feed(provider).page(after, limit)
    next_cursor = encode_ranked_cursor(last.band, last.need_id) if last else None
    return _feed_views(provider, slots), next_cursor


def feed_items(user: User, need_ids: Sequence[int]) -> list[NeedView]:
    """Those of ``need_ids`` that are in the calling provider's feed now, in feed order: what
    the feed page fetches when needs are announced live."""
    provider = _feed_provider(user)
    return _feed_views(provider, feeds.Feed(provider).among(need_ids))


def offers_on(user: User, need_id: int) -> tuple[Need, str, list[Offer]]:
    """The need, the caller's role, and the offers on it they may see: the customer every
    offer, a provider only their own."""
    need, role = need_with_role(user, need_id)
    return need, role, visible_offers(user, need, role)


# every need page and offer list asks one of them: built once, their values bound
_OFFERS_ON = select(Offer).where(Offer.need_id == bindparam("need"), Offer.hidden_at.is_(None))
_OWN_OFFER_ON = _OFFERS_ON.where(Offer.provider_id == bindparam("provider"))


def visible_offers(user: User, need: Need, role: str) -> list[Offer]:
    """The offers on ``need`` that ``user``, already known to have ``role`` there, may see."""
    if role == "customer":
        return list(db.session.scalars(_OFFERS_ON, {"need": need.id}))
    provider = providers.provider_of(user)
    assert provider is not None
    return list(db.session.scalars(_OWN_OFFER_ON, {"need": need.id, "provider": provider.id}))


def photos(need: Need) -> list[NeedPhoto]:
    """The photos of ``need``, for a reader already known to have a role on it."""
    return media.photos_of(need.id)


def need_photo(user: User, need_id: int, photo_id: int, small: bool = False) -> MediaBlob:
    """A photo of a need, for whoever may see the need (404 for everyone else, as for the need:
    a provider it was not posted to cannot learn that it has photos)."""
    need, _role = need_with_role(user, need_id)
    photo = media.photo(need.id, photo_id)
    return media.blob(photo.small_digest if small else photo.digest)
