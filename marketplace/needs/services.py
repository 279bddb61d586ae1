"""Needs: posting one (and telling every matched provider at once), reading one, the reach of a
need before it is posted, and a customer's own needs. Who sees what of a need is ``access``;
its status changes are ``lifecycle``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import TooManyRequests

from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.db_types import utcnow
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.extensions import commit_as_written, db, spend
from marketplace.geo import (
    Point,
    display_km,
    distance_band,
    grid_cell_centre,
    in_reach,
    lat_row,
    search_box,
)
from marketplace.geocoding import services as geocoding
from marketplace.media import services as media
from marketplace.media.models import NeedPhoto
from marketplace.needs.models import Audience, Need, NeedRecipient, NeedStatus
from marketplace.needs.presenters import summary
from marketplace.notifications.outbox import Encoded, encode, notify_each
from marketplace.notifications.types import NotificationType
from marketplace.pagination import paginate_built
from marketplace.providers import matching
from marketplace.providers import services as providers
from marketplace.providers.models import Category, Provider
from marketplace.signals import services as signals
from marketplace.signals.models import NeedTag
from marketplace.signals.parser import MENTION, SIGIL_OF, being_typed, parse

MAX_TTL = timedelta(days=30)


def create(user: User, data: dict[str, Any]) -> Need:
    now = utcnow()
    category = providers.category_by_slug(data["category"])
    ttl = timedelta(hours=current_app.config["NEED_DEFAULT_TTL_HOURS"])
    expires_at: datetime = data.get("expires_at") or now + ttl
    if expires_at <= now:
        raise Invalid("expires_at must be in the future.", {"expires_at": ["Must be in the future."]})
    if expires_at > now + MAX_TTL:
        raise Invalid("A need may stay open for at most 30 days.",
                      {"expires_at": ["Must be within 30 days from now."]})
    needed_by = data.get("needed_by")
    if needed_by is not None and needed_by <= now:
        raise Invalid("needed_by must be in the future.", {"needed_by": ["Must be in the future."]})
    audience = Audience(data.get("audience") or Audience.NEARBY)
    recipients: Sequence[Provider] = ()
    if audience == Audience.FAVOURITES:
        recipients = blocks.favourite_providers(user.id)
        if not recipients:
            raise Invalid("None of your favourite providers can take it now.",
                          {"audience": ["You have no favourite providers taking work now; "
                                        "send it to providers nearby."]})
    mentioned = _mentioned(user, parse(data["title"], data.get("description", "")).mentions)
    location, place = _located(data["location"], data.get("place") or None)
    need = Need(
        customer_id=user.id,
        category_id=category.id,
        title=data["title"],
        description=data.get("description", ""),
        lat=location["lat"],
        lon=location["lon"],
        lat_row=lat_row(location["lat"]),
        place=place,
        address=data.get("address") or None,
        radius_km=data["radius_km"],
        budget_amount=data["budget"]["amount"],
        budget_currency=data["budget"]["currency"],
        needed_by=needed_by,
        expires_at=expires_at,
        max_offers=data.get("max_offers"),
        status=NeedStatus.OPEN,
        offer_count=0,
        audience=audience,
    )
    db.session.add(need)
    db.session.flush()
    found = signals.record(need.id, user.id, need.lat, need.lon, now, need.title,
                           need.description)
    if audience == Audience.FAVOURITES:
        db.session.add_all(NeedRecipient(need_id=need.id, provider_id=p.id) for p in recipients)
        db.session.flush()
        _notify_recipients(need, recipients, mentioned)
    else:
        _notify_matched(need, [(k, t) for k, t in found.pairs() if k != MENTION], mentioned)
    commit_as_written()  # the answer is the need as written
    return need


EDITABLE = ("title", "description", "needed_by", "expires_at")


class Edited(NamedTuple):
    """What an edit adds to whom a need is sent (``tell_new_recipients``)."""

    mentioned: list[Provider]  # @mentioned now and not before
    tags: list[tuple[str, str]]  # intent and topic tags it has now and did not have before
    unmentioned: set[int]  # provider ids no longer @mentioned: told already, when they were


def edit(user: User, need: Need, data: dict[str, Any]) -> Edited:
    """Change an open need's text, budget and dates (``NeedPatchSchema``), in the caller's
    transaction, the need row locked by the conditional UPDATE (409 when it is no longer
    open). Its signals are stored anew (``signals.rerecord``: trends stay the sum of the
    needs as they read now); a provider no longer @mentioned stops being a recipient by it.
    Returns who it may now reach that it did not before: the providers it newly @mentions
    and the intent and topic tags it newly has, to be sent it (``tell_new_recipients``)."""
    now = utcnow()
    if need.status != NeedStatus.OPEN:
        raise Conflict(f"This need is {need.status.value}; you can only edit a need that is open.")
    if need.expires_at <= now:
        raise Conflict("This need has expired; you can no longer edit it.")
    changes: dict[str, Any] = {key: data[key] for key in EDITABLE if key in data}
    if "budget" in data:
        if data["budget"]["currency"] != need.budget_currency:
            raise Invalid("The budget stays in the need's currency.",
                          {"budget": {"currency": [
                              f"Keep the need's currency ({need.budget_currency}): offers "
                              "are made in it."]}})
        changes["budget_amount"] = data["budget"]["amount"]
    expires_at = changes.get("expires_at")
    if "expires_at" in changes and (expires_at is None or expires_at <= now):
        raise Invalid("expires_at must be in the future.", {"expires_at": ["Must be in the future."]})
    if expires_at is not None and expires_at > now + MAX_TTL:
        raise Invalid("A need may stay open for at most 30 days.",
                      {"expires_at": ["Must be within 30 days from now."]})
    needed_by = changes.get("needed_by")
    if needed_by is not None and needed_by <= now:
        raise Invalid("needed_by must be in the future.", {"needed_by": ["Must be in the future."]})
    title = changes.get("title", need.title)
    description = changes.get("description", need.description)
    before = [t.tag for t in need.tags if t.kind == MENTION]
    tagged = {(t.kind, t.tag) for t in need.tags if t.kind != MENTION}
    after = parse(title, description).mentions
    if len(after) > MAX_MENTIONS:
        raise Invalid(f"At most {MAX_MENTIONS} @mentions in one need.",
                      {"description": [f"Mention at most {MAX_MENTIONS} providers."]})
    mentioned = _mentioned(user, [h for h in after if h not in before])
    result = db.session.execute(
        update(Need).where(Need.id == need.id, Need.status == NeedStatus.OPEN)
        .values(**changes, edited_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        db.session.refresh(need)
        raise Conflict(f"This need is {need.status.value}; you can only edit a need that is open.")
    db.session.refresh(need)
    found = signals.rerecord(need.id, need.customer_id, need.lat, need.lon, need.created_at,
                             need.title, need.description)
    db.session.expire(need, ["tags"])
    gone = [p.id for p in providers.by_handles([h for h in before if h not in after])]
    if gone:
        db.session.execute(delete(NeedRecipient).where(
            NeedRecipient.need_id == need.id, NeedRecipient.via == "mention",
            NeedRecipient.provider_id.in_(gone)))
    added = [p for p in found.pairs() if p[0] != MENTION and p not in tagged]
    return Edited(mentioned, added, set(gone))


def tell_new_recipients(need: Need, edited: Edited, skip_user_ids: set[int]) -> None:
    """Send an edited need to whom the edit newly reaches, as a new need is sent to them (a
    ``need.matched``, in the caller's transaction): the providers it newly @mentions
    (``direct``), and the providers subscribed to a tag it newly has, in reach, found as
    ``_notify_matched`` finds them for a new need (never the blocked or inactive), unless
    it was sent to them already (a recipient, or matched by its category). Each becomes a
    recipient, but those in ``skip_user_ids`` (with an offer on it: told otherwise) and
    those it no longer @mentions (told when it did) are not told again. A need sent to
    favourites goes to nobody by a tag."""
    known = set(db.session.scalars(select(NeedRecipient.provider_id).where(
        NeedRecipient.need_id == need.id)))
    direct = {p.id for p in edited.mentioned}
    by_tag: list[matching.Match] = []
    if edited.tags and need.audience != Audience.FAVOURITES:
        blocked = (blocks.blocked_provider_ids(need.customer_id)
                   if need.customer_id is not None else set())
        by_category = {m.provider_id for m in reach(need.category_id, need.lat, need.lon,
                                                    need.radius_km, need.customer_id)}
        by_tag = _tag_matches(need, edited.tags, blocked | by_category | known | direct)
    db.session.add_all([*(NeedRecipient(need_id=need.id, provider_id=m.provider_id, via="tag")
                          for m in by_tag),
                        *(NeedRecipient(need_id=need.id, provider_id=p.id, via="mention")
                          for p in edited.mentioned
                          if p.id not in known and p.user_id not in skip_user_ids)])
    db.session.flush()
    told = [m for m in by_tag
            if m.user_id not in skip_user_ids and m.provider_id not in edited.unmentioned]
    mentioned = [p for p in edited.mentioned if p.user_id not in skip_user_ids]
    if not told and not mentioned:
        return
    shared = summary(need)
    cell = grid_cell_centre(need.lat, need.lon)
    notify_each(NotificationType.NEED_MATCHED,
                [*_matched_payloads(shared, cell, told),
                 *_direct_payloads(shared, cell, mentioned)])


def _tag_matches(need: Need, tags: list[tuple[str, str]],
                 exclude_provider_ids: set[int]) -> list[matching.Match]:
    """The providers subscribed to one of ``tags`` that ``need`` reaches under the distance
    rule, minus its customer and ``exclude_provider_ids``."""
    return matching.providers_for_tags(tags, need.lat, need.lon, need.radius_km,
                                       exclude_user_id=need.customer_id,
                                       exclude_provider_ids=exclude_provider_ids)


MAX_MENTIONS = 5


def _mentioned(user: User, handles: list[str]) -> list[Provider]:
    """The providers a new need's @mentions send it to: active, taking direct asks, not the
    customer and not blocked by them. Every mention spends from ``RATE_LIMIT_MENTIONS``
    (found or not, so the budget says nothing about who exists), before anything is written."""
    if not handles:
        return []
    if len(handles) > MAX_MENTIONS:
        raise Invalid(f"At most {MAX_MENTIONS} @mentions in one need.",
                      {"description": [f"Mention at most {MAX_MENTIONS} providers."]})
    for _handle in handles:
        if not spend("RATE_LIMIT_MENTIONS", f"user:{user.id}"):
            raise TooManyRequests(current_app.config["RATE_LIMIT_MENTIONS"])
    blocked = blocks.blocked_provider_ids(user.id)
    return [p for p in providers.by_handles(handles)
            if p.takes_work and p.direct_asks and p.user_id != user.id and p.id not in blocked]


def _located(location: dict[str, Any], asked: str | None) -> tuple[dict[str, float], str | None]:
    """The point and the public label of a new need. A label is never stored as typed (it is
    shown to every matched provider, and an address could be typed there): asking for one
    (``asked``) gets the geocoder's name for the point's grid cell; a location query without
    it gets the label of the query's answer."""
    if "query" in location:
        found = geocoding.resolve(location["query"])
        point, label = {"lat": found.lat, "lon": found.lon}, found.label
    else:
        point, label = {"lat": location["lat"], "lon": location["lon"]}, None
    if asked:
        label = geocoding.label_of_cell(point["lat"], point["lon"])
    return point, label


def reach(category_id: int, lat: float, lon: float, radius_km: float,
          customer_id: int | None) -> list[matching.Match]:
    """The providers a need with these parameters is posted to: matched, minus the customer
    and anyone the customer blocked."""
    blocked = blocks.blocked_provider_ids(customer_id) if customer_id is not None else set()
    return matching.providers_for(category_id, lat, lon, radius_km,
                                  exclude_user_id=customer_id, exclude_provider_ids=blocked)


def _notify_matched(need: Need, tags: list[tuple[str, str]],
                    mentioned: Sequence[Provider]) -> None:
    """Every matched provider gets the same event in the same commit: nobody is first.
    The summary is built once; only the distance band differs per provider, so there are only
    as many distinct payloads as bands, each built and JSON-encoded once (``_banded``), and a
    band is computed once per distinct provider cell. Matched: serving the category, or
    subscribed to one of its intent or topic tags (those get a ``need_recipients`` row, ``via``
    "tag", which the feed and visibility read), under the same distance rule; and whoever it
    @mentions, wherever they are (``via`` "mention", ``direct``)."""
    shared = summary(need)
    cell = grid_cell_centre(need.lat, need.lon)
    customer_id = need.customer_id
    blocked = blocks.blocked_provider_ids(customer_id) if customer_id is not None else set()
    matched = matching.providers_for(need.category_id, need.lat, need.lon, need.radius_km,
                                     exclude_user_id=customer_id, exclude_provider_ids=blocked)
    direct = {p.id for p in mentioned}
    by_tag: list[matching.Match] = []
    if tags:
        by_tag = _tag_matches(need, tags, blocked | {m.provider_id for m in matched} | direct)
    if by_tag or mentioned:
        db.session.add_all([*(NeedRecipient(need_id=need.id, provider_id=m.provider_id, via="tag")
                              for m in by_tag),
                            *(NeedRecipient(need_id=need.id, provider_id=p.id, via="mention")
                              for p in mentioned)])
        db.session.flush()
    items = _matched_payloads(shared, cell, [m for m in [*matched, *by_tag]
                                             if m.provider_id not in direct])
    items.extend(_direct_payloads(shared, cell, mentioned))
    notify_each(NotificationType.NEED_MATCHED, items)


def _matched_payloads(shared: dict[str, Any], cell: Point,
                      matched: Sequence[matching.Match]) -> list[tuple[int, Encoded]]:
    """(user id, payload) of each matched provider: one payload per distance band, a band
    computed once per distinct provider cell (``_banded``)."""
    payload = _banded(shared, direct=False)
    by_cell: dict[Point, Encoded] = {}
    items = []
    for match in matched:
        data = by_cell.get(match.cell)
        if data is None:
            data = by_cell[match.cell] = payload(distance_band(display_km(match.cell, cell)))
        items.append((match.user_id, data))
    return items


def _banded(shared: dict[str, Any], direct: bool) -> Callable[[str], Encoded]:
    """``band -> {"need": {**shared, "distance_band": band, "direct": direct}}``, one object per
    band with its JSON text spliced from one encoding of the rest (the same text
    ``outbox.encode`` gives for the whole payload)."""
    mark = "\x00distance band\x00"
    parts = encode({"need": {**shared, "distance_band": mark, "direct": direct}}).split(
        encode(mark))
    made: dict[str, Encoded] = {}

    def payload(band: str) -> Encoded:
        data = made.get(band)
        if data is None:
            data = {"need": {**shared, "distance_band": band, "direct": direct}}
            # (a customer's text holding the mark itself is encoded whole)
            text = (parts[0] + encode(band) + parts[1]) if len(parts) == 2 else encode(data)
            data = made[band] = Encoded(data, text)
        return data

    return payload


def _direct_payloads(shared: dict[str, Any], cell: Any,
                     recipients: Sequence[Provider]) -> list[tuple[int, Encoded]]:
    payload = _banded(shared, direct=True)
    return [(p.user_id, payload(distance_band(
        display_km(grid_cell_centre(p.base_lat, p.base_lon), cell)))) for p in recipients]


def _notify_recipients(need: Need, recipients: Sequence[Provider],
                       mentioned: Sequence[Provider] = ()) -> None:
    """A need sent to favourites: each is told in the same commit, as with matching, and
    each payload says only that it was sent to them directly (never who else it went to).
    Providers it @mentions are sent it too, the same way."""
    shared = summary(need)
    cell = grid_cell_centre(need.lat, need.lon)
    known = {p.id for p in recipients}
    extra = [p for p in mentioned if p.id not in known]
    db.session.add_all(NeedRecipient(need_id=need.id, provider_id=p.id, via="mention")
                       for p in extra)
    db.session.flush()
    notify_each(NotificationType.NEED_MATCHED,
                _direct_payloads(shared, cell, [*recipients, *extra]))


def is_recipient(provider: Provider, need: Need) -> bool:
    return db.session.get(NeedRecipient, (need.id, provider.id)) is not None


def _sent_by_signal(provider: Provider, need: Need) -> bool:
    """A nearby need sent to ``provider`` by an @mention (wherever they are), or by a tag they
    subscribe to (under the distance rule, now)."""
    row = db.session.get(NeedRecipient, (need.id, provider.id))
    if row is None:
        return False
    if row.via == "mention":
        return True
    return in_reach(grid_cell_centre(provider.base_lat, provider.base_lon), provider.radius_km,
                    grid_cell_centre(need.lat, need.lon), need.radius_km)


def add_photo(user: User, need: Need, read: Callable[[], bytes],
              field: str = "photo") -> NeedPhoto:
    """Add the image ``read`` returns to ``need`` (its customer, while it is open, up to
    NEED_PHOTOS_MAX) and commit. The rules are checked before the upload is read, so a caller
    who may not add one learns nothing from the body's faults; the need row is locked first,
    so two uploads at once cannot pass the cap."""
    if need.customer_id != user.id:
        raise Forbidden("Only the need's customer adds photos.")
    db.session.execute(select(Need.id).where(Need.id == need.id).with_for_update())
    if need.status != NeedStatus.OPEN:
        raise Conflict(f"Photos are added while a need is open; this one is {need.status.value}.")
    most = current_app.config["NEED_PHOTOS_MAX"]
    if media.count_photos(need.id) >= most:
        message = f"A need carries at most {most} photos; remove one first."
        raise Conflict(message, {field: [message]})
    photo = media.add_photo(need.id, read(), field)
    db.session.commit()
    return photo


def remove_photo(user: User, need: Need, photo_id: int) -> None:
    """Remove a photo from ``need`` (its customer, whatever its state) and commit."""
    if need.customer_id != user.id:
        raise Forbidden("Only the need's customer removes photos.")
    media.remove_photos([media.photo(need.id, photo_id)])
    db.session.commit()


# A need read alone comes with its tags and its customer joined: one statement, where the
# tags' own select-in load (what lists of needs use) is a second one as costly as the first,
# and every provider's read asks for the customer (are they suspended? blocking?).
_READ_ALONE = (joinedload(Need.tags), joinedload(Need.customer))


def get(need_id: int) -> Need:
    need = db.session.get(Need, need_id, options=_READ_ALONE)
    if need is None or need.hidden_at is not None:
        raise NotFound("No such need.")
    return need


def matches(provider: Provider, need: Need) -> bool:
    """Whether ``need`` was posted to ``provider``: intent is permission. A need sent to
    favourites was posted to its recipients only, whatever their distance and categories."""
    return posted_to(provider, need) and not blocks.is_blocked(need.customer_id, provider.id)


def posted_to(provider: Provider, need: Need) -> bool:
    """``matches`` for a caller that has already found the customer does not block the
    provider (``access.viewer_role``): the rule without that lookup."""
    if need.customer is not None and need.customer.suspended_at is not None:
        return False  # a suspended customer's needs are posted to nobody meanwhile
    if need.audience == Audience.FAVOURITES:
        return (provider.takes_work and need.hidden_at is None
                and provider.user_id != need.customer_id
                and is_recipient(provider, need))
    return (
        provider.takes_work
        and need.hidden_at is None
        and provider.user_id != need.customer_id
        and ((providers.serves(provider, need.category_id)
              and in_reach(grid_cell_centre(provider.base_lat, provider.base_lon),
                           provider.radius_km, grid_cell_centre(need.lat, need.lon),
                           need.radius_km))
             or _sent_by_signal(provider, need))
    )


# a customer's own needs, each with its category joined (a lazy load per category shown was a
# statement each) and its tags (their select-in load was a second statement); built once,
# with and without a status
_MINE = (select(Need).options(joinedload(Need.category), joinedload(Need.tags))
         .where(Need.customer_id == bindparam("customer"), Need.hidden_at.is_(None)))
_MINE_IN_STATUS = _MINE.where(Need.status == bindparam("status"))


def list_mine(user: User, status: str | None, cursor: str | None,
              limit: int) -> tuple[Sequence[Need], str | None]:
    if status:
        return paginate_built(_MINE_IN_STATUS, {"customer": user.id, "status": NeedStatus(status)},
                              Need.id, cursor, limit)
    return paginate_built(_MINE, {"customer": user.id}, Need.id, cursor, limit)


def by_share_token(token: str) -> Need:
    """The need behind a public share link (the token is its only key)."""
    need = db.session.scalar(select(Need).where(Need.share_token == token))
    if need is None or need.hidden_at is not None:
        raise NotFound("No such need.")
    return need


SUGGEST_DAYS = 30


def suggest_category(lat: float, lon: float, tags: list[tuple[str, str]]) -> Category | None:
    """The category most needs nearby (~25 km, the last 30 days, the newest 2,000 per tag) with
    these intent or topic tags were posted in, by distinct customers -- only when at least
    ``TRENDS_MIN_CUSTOMERS`` of them chose it (an aggregate, like trends)."""
    tags = [(kind, tag) for kind, tag in tags if kind != MENTION][:5]
    if not tags:
        return None
    k = current_app.config["TRENDS_MIN_CUSTOMERS"]
    cell = grid_cell_centre(lat, lon)
    box = search_box(cell.lat, cell.lon, signals.SUGGEST_RADIUS_KM)
    since = utcnow() - timedelta(days=SUGGEST_DAYS)
    customers: dict[int, set[int]] = {}
    for kind, tag in tags:
        rows = db.session.execute(
            select(Need.category_id, Need.customer_id, Need.lon)
            .join(NeedTag, NeedTag.need_id == Need.id)
            .where(NeedTag.kind == kind, NeedTag.tag == tag, Need.created_at >= since,
                   Need.hidden_at.is_(None), Need.customer_id.is_not(None),
                   Need.lat_row.in_(box.rows))
            .order_by(Need.id.desc()).limit(2000))
        for category_id, customer_id, nlon in rows:
            if any(lo <= nlon <= hi for lo, hi in box.lon_ranges):
                customers.setdefault(category_id, set()).add(customer_id)
    best = max(customers.items(), key=lambda item: (len(item[1]), -item[0]), default=None)
    if best is None or len(best[1]) < k:
        return None
    return db.session.get(Category, best[0])


def suggestions(args: dict[str, Any]) -> dict[str, Any]:
    """Tags (``signals.suggest_tags``) and a category (``suggest_category``) to offer someone
    typing a need (``SuggestionArgs``: ``text`` being typed, the ``also`` field beside it, and
    ``lat``/``lon`` or a ``place_query``, looked up, 422 naming it when unknown): aggregates
    under the trends rules, never one person's needs. A tag being typed at the end of ``text``
    is completed by prefix; tags already written are not suggested."""
    if args.get("lat") is not None and args.get("lon") is not None:
        lat, lon = args["lat"], args["lon"]
    else:
        found = geocoding.resolve(args["place_query"], field="place_query")
        lat, lon = found.lat, found.lon
    text = args.get("text") or ""
    typing = being_typed(text)
    kind, prefix, start = typing if typing else (None, "", len(text))
    written = parse(args.get("also") or "", text[:start])
    tags = signals.suggest_tags(lat, lon, kind, prefix, exclude=set(written.pairs()))
    return {
        "typing": SIGIL_OF[kind] + prefix if kind else None,
        "tags": [{**t, "spelled": SIGIL_OF[t["kind"]] + t["tag"]} for t in tags],
        "category": suggest_category(lat, lon, written.pairs()),
    }
