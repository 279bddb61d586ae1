"""What the platform holds about one person: the export (``export``) and the erasure
(``erase``), one ``Section`` per table.

A section says, for its table, which rows are about the person (``about``), which columns
never leave the database (``omit``: secrets, hashes) and what erasing the person does to
those rows (``erase``). tests/test_export.py walks ``db.metadata``: every table with a
foreign key to users, providers, needs or offers must have a section here, and the export
must hold exactly the rows the foreign keys say are about the person, so a table added
without a section fails the test. tests/test_erasure.py scans every text and JSON column
after an erasure for what identified the person.

Adding a table ``notes`` (``user_id -> users.id``)::

    Section("notes", lambda t, who: t.c.user_id == who.user_id,
            erase=lambda t, who: _delete(t, t.c.user_id == who.user_id)),
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, Text, cast, delete, false, or_, select, update

from marketplace import lifecycle
from marketplace.accounts import services as accounts
from marketplace.accounts import sessions
from marketplace.accounts.models import User
from marketplace.db_types import utcnow
from marketplace.errors import DomainError, Forbidden
from marketplace.extensions import db
from marketplace.geo import grid_cell_centre, lat_row, unit_vector
from marketplace.media import services as media
from marketplace.messages.models import Message
from marketplace.moderation.models import Report
from marketplace.needs.models import Need, NeedStatus
from marketplace.notifications.outbox import signal
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus
from marketplace.providers.models import ErasedHandle, Provider
from marketplace.webhooks.models import Webhook, WebhookDelivery

FORMAT = "nearby-export/1"
ERASED = "[erased]"
FORMER_CUSTOMER = "Former customer"
FORMER_PROVIDER = "Former provider"
ACCOUNT_ERASED = "account.erased"  # the live-only signal telling the person's pages (then cut)


@dataclass
class Who:
    """The person and the rows their others hang from: their provider profile(s), the needs
    they posted and the offers they made or received."""

    user_id: int
    provider_ids: list[int]
    need_ids: list[int]
    offer_ids: list[int]

    @classmethod
    def of(cls, user_id: int) -> Who:
        pids = list(db.session.scalars(select(Provider.id).where(Provider.user_id == user_id)))
        nids = list(db.session.scalars(select(Need.id).where(Need.customer_id == user_id)))
        oids = list(db.session.scalars(select(Offer.id).where(
            or_(Offer.provider_id.in_(pids), Offer.need_id.in_(nids)))))
        return cls(user_id, pids, nids, oids)


About = Callable[[Table, Who], ColumnElement[bool]]
Erase = Callable[[Table, Who], None]


@dataclass
class Section:
    table: str
    about: About
    erase: Erase
    omit: tuple[str, ...] = ()
    # Rows the foreign keys tie to the person that are someone else's act and stay out of
    # the export (a customer's block of this provider is the customer's decision).
    withheld: About | None = None
    only: tuple[str, ...] | None = None  # export just these columns
    doc: str = ""

    def where(self, t: Table, who: Who) -> ColumnElement[bool]:
        clause = self.about(t, who)
        return clause & ~self.withheld(t, who) if self.withheld else clause


def _in(column: Any, ids: list[int]) -> ColumnElement[bool]:
    return column.in_(ids) if ids else false()


def _delete(t: Table, clause: ColumnElement[bool]) -> None:
    db.session.execute(delete(t).where(clause))


def _drop_images(t: Table, clause: ColumnElement[bool]) -> None:
    """Delete the rows naming images, then the images nothing else names."""
    digests = [d for row in db.session.execute(select(t.c.digest, t.c.small_digest).where(clause))
               for d in row]
    _delete(t, clause)
    media.discard_unused(digests)


def _keep(_t: Table, _who: Who) -> None:
    """The rows stay as they are (what they hold is scrubbed by another section)."""


def _erase_user(t: Table, who: Who) -> None:
    db.session.execute(update(t).where(t.c.id == who.user_id).values(
        email=f"erased-{who.user_id}@erased.invalid", name=FORMER_CUSTOMER, phone=None,
        password_hash="!erased", time_zone=None, locale=None, distance_unit=None, erased_at=utcnow()))


def _erase_provider(t: Table, who: Who) -> None:
    for provider in db.session.scalars(select(Provider).where(Provider.user_id == who.user_id)):
        lat, lon = grid_cell_centre(provider.base_lat, provider.base_lon)
        # The handle is reserved by its hash: nobody may take it to pass as the erased provider.
        db.session.add(ErasedHandle(digest=ErasedHandle.of(provider.handle)))
        db.session.execute(update(t).where(t.c.id == provider.id).values(
            handle=f"erased-{provider.id}", display_name=FORMER_PROVIDER, bio="", base_lat=lat,
            base_lon=lon, active=False, erased_at=utcnow()))


def _erase_needs(t: Table, who: Who) -> None:
    for need in db.session.scalars(select(Need).where(Need.customer_id == who.user_id)):
        lat, lon = grid_cell_centre(need.lat, need.lon)
        u = unit_vector(lat, lon)
        db.session.execute(update(t).where(t.c.id == need.id).values(
            title=ERASED, description="", address=None, place=None, lat=lat, lon=lon,
            lat_row=lat_row(lat), ux=u.x, uy=u.y, uz=u.z, cancel_reason=None))
    db.session.execute(update(t).where(t.c.cancelled_by_id == who.user_id,
                                       t.c.customer_id != who.user_id)
                       .values(cancel_reason=None))


def _erase_offers(t: Table, who: Who) -> None:
    db.session.execute(update(t).where(_in(t.c.provider_id, who.provider_ids))
                       .values(message=ERASED))


def _erase_messages(t: Table, who: Who) -> None:
    db.session.execute(update(t).where(t.c.sender_id == who.user_id).values(body=ERASED))


def _erase_ratings(t: Table, who: Who) -> None:
    # A rating stays (the provider's reputation keeps its count), by "Former customer", and
    # no longer says where the job was.
    db.session.execute(update(t).where(t.c.customer_id == who.user_id)
                       .values(customer_id=None, near_row=None, near_col=None))
    db.session.execute(update(t).where(_in(t.c.provider_id, who.provider_ids))
                       .values(reply=None))


def _deliveries_of(user_id: Any) -> Any:
    """The ids of the deliveries owed to a user's webhooks."""
    return (select(WebhookDelivery.id).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(Webhook.user_id == user_id))


SECTIONS: list[Section] = [
    Section("users", lambda t, w: t.c.id == w.user_id, _erase_user, omit=("password_hash",),
            doc="your account"),
    Section("api_tokens", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id), omit=("token_hash",),
            doc="your API tokens (never their values or hashes)"),
    Section("account_tokens", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id), omit=("token_hash",),
            doc="links mailed to you (to confirm an address, reset your password), never "
                "their tokens or hashes"),
    Section("web_sessions", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id), omit=("key_hash",),
            doc="where you are signed in on the web (never the session keys)"),
    Section("live_connections", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id),
            doc="your open live (Socket.IO) connections"),
    Section("providers", lambda t, w: t.c.user_id == w.user_id, _erase_provider,
            doc="your provider profile, with its exact base"),
    Section("provider_categories", lambda t, w: _in(t.c.provider_id, w.provider_ids), _keep,
            doc="the categories you serve"),
    Section("provider_coverage",
            lambda t, w: _in(t.c.provider_id, w.provider_ids) | (t.c.user_id == w.user_id),
            lambda t, w: _delete(t, t.c.user_id == w.user_id),
            doc="where you take work (derived from the profile)"),
    Section("needs", lambda t, w: (t.c.customer_id == w.user_id)
            | (t.c.cancelled_by_id == w.user_id) | _in(t.c.accepted_offer_id, w.offer_ids),
            _erase_needs, doc="your needs, with exact locations, and the jobs you were given"),
    Section("offers", lambda t, w: _in(t.c.provider_id, w.provider_ids)
            | _in(t.c.need_id, w.need_ids), _erase_offers,
            doc="offers you made and offers received on your needs"),
    Section("messages", lambda t, w: _in(t.c.offer_id, w.offer_ids) | (t.c.sender_id == w.user_id),
            _erase_messages, doc="both sides of your threads"),
    Section("ratings", lambda t, w: _in(t.c.need_id, w.need_ids)
            | _in(t.c.provider_id, w.provider_ids) | (t.c.customer_id == w.user_id),
            _erase_ratings, doc="ratings you gave and received, with replies"),
    Section("blocks", lambda t, w: (t.c.customer_id == w.user_id)
            | _in(t.c.provider_id, w.provider_ids),
            lambda t, w: _delete(t, t.c.customer_id == w.user_id),
            withheld=lambda t, w: t.c.customer_id != w.user_id,
            doc="providers you blocked (not who blocked you)"),
    Section("provider_contacts", lambda t, w: (t.c.customer_id == w.user_id)
            | _in(t.c.provider_id, w.provider_ids),
            lambda t, w: _delete(t, t.c.customer_id == w.user_id),
            withheld=lambda t, w: t.c.customer_id != w.user_id,
            doc="your records of providers you dealt with: notes, would hire again, favourites "
                "(not what customers noted about you: that is theirs, and private)"),
    Section("need_recipients", lambda t, w: _in(t.c.need_id, w.need_ids)
            | _in(t.c.provider_id, w.provider_ids), _keep,
            doc="the favourites your needs went to, and the needs sent to you directly"),
    Section("avatars", lambda t, w: t.c.user_id == w.user_id, lambda t, w: _drop_images(
                t, t.c.user_id == w.user_id), doc="your photo (the digests of its two sizes; "
            "the images are served at /media/<digest>)"),
    Section("need_photos", lambda t, w: _in(t.c.need_id, w.need_ids), lambda t, w: _drop_images(
                t, _in(t.c.need_id, w.need_ids)), doc="the photos on your needs (their digests "
            "and sizes; the images are served at their API paths)"),
    Section("need_tags", lambda t, w: _in(t.c.need_id, w.need_ids),
            lambda t, w: _delete(t, _in(t.c.need_id, w.need_ids)),
            doc="the ?intent, #topic and @mention signals of your needs"),
    Section("provider_tags", lambda t, w: _in(t.c.provider_id, w.provider_ids),
            lambda t, w: _delete(t, _in(t.c.provider_id, w.provider_ids)),
            doc="the tags you subscribe to as a provider"),
    Section("provider_tag_coverage",
            lambda t, w: _in(t.c.provider_id, w.provider_ids) | (t.c.user_id == w.user_id),
            lambda t, w: _delete(t, t.c.user_id == w.user_id),
            doc="where you take work for your tags (derived from the profile)"),
    Section("trend_hits", lambda t, w: t.c.customer_id == w.user_id,
            lambda t, w: _delete(t, t.c.customer_id == w.user_id),
            doc="how many needs you posted with each tag, by ~10 km tile and hour (what "
                "trends are counted from; shown to others only as aggregates)"),
    Section("alert_settings", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id),
            doc="your e-mail alert switches and when you were last mailed"),
    Section("alert_categories", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id),
            doc="the categories you get e-mail alerts for"),
    Section("alert_queue", lambda t, w: (t.c.user_id == w.user_id) | _in(t.c.need_id, w.need_ids),
            lambda t, w: _delete(t, (t.c.user_id == w.user_id) | _in(t.c.need_id, w.need_ids)),
            withheld=lambda t, w: t.c.user_id != w.user_id,
            doc="matched needs waiting for your next alert mail (not which providers your "
                "needs will be mailed to)"),
    Section("notifications", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id), doc="your notifications"),
    Section("notification_reads", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id),
            doc="how many of your notifications you have marked read"),
    Section("reports", lambda t, w: (t.c.reporter_id == w.user_id)
            | (t.c.target_user_id == w.user_id) | (t.c.resolved_by == w.user_id),
            lambda t, w: _delete(t, t.c.reporter_id == w.user_id),
            withheld=lambda t, w: t.c.reporter_id != w.user_id,
            doc="the reports you filed (not reports about you: who reported you stays "
                "theirs)"),
    Section("moderation_log", lambda t, w: (t.c.subject_user_id == w.user_id)
            | (t.c.admin_id == w.user_id) | t.c.report_id.in_(
                select(Report.id).where(Report.reporter_id == w.user_id)),
            _keep, withheld=lambda t, w: (t.c.subject_user_id != w.user_id)
            | t.c.subject_user_id.is_(None),
            only=("id", "action", "target_type", "target_id", "subject_user_id", "reason", "at"),
            doc="moderation actions on your content and account (not which admin acted, nor "
                "actions you took as an admin on others: the audit log stays whole)"),
    Section("webhook_deliveries", lambda t, w: t.c.webhook_id.in_(
                select(Webhook.id).where(Webhook.user_id == w.user_id)),
            lambda t, w: _delete(t, t.c.webhook_id.in_(
                select(Webhook.id).where(Webhook.user_id == w.user_id))),
            doc="what was delivered (or is owed) to your webhooks, and their answers"),
    Section("webhook_attempts", lambda t, w: t.c.delivery_id.in_(_deliveries_of(w.user_id)),
            lambda t, w: _delete(t, t.c.delivery_id.in_(_deliveries_of(w.user_id))),
            doc="every attempt at those deliveries: when, how long, and what your server "
                "answered"),
    Section("webhooks", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id), omit=("secret",),
            doc="your webhooks (never their secrets)"),
    Section("idempotency_keys", lambda t, w: t.c.user_id == w.user_id,
            lambda t, w: _delete(t, t.c.user_id == w.user_id),
            only=("id", "user_id", "scope", "status_code", "created_at"),
            doc="replay records of your requests: metadata only (their stored responses are "
                "encrypted with keys only your client held)"),
]


def sections() -> dict[str, Section]:
    return {s.table: s for s in SECTIONS}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def export(user: User) -> dict[str, Any]:
    """Every row about ``user``, table by table, as JSON-ready data (docs/api.md, "Export")."""
    who = Who.of(user.id)
    tables: dict[str, list[dict[str, Any]]] = {}
    for section in SECTIONS:
        t = db.metadata.tables[section.table]
        columns = [c for c in t.c if c.name not in section.omit
                   and (section.only is None or c.name in section.only)]
        rows = db.session.execute(select(*columns).where(section.where(t, who))
                                  .order_by(*t.primary_key.columns)).mappings()
        tables[section.table] = [{k: _json_value(v) for k, v in row.items()} for row in rows]
    return {"format": FORMAT, "exported_at": utcnow().isoformat(), "user_id": user.id,
            "tables": tables}


def _close_dealings(user: User, who: Who) -> None:
    """Open needs cancelled, assigned jobs cancelled, pending offers withdrawn: through the
    lifecycle, so the other side is told and nothing is left waiting on a deleted account."""
    reason = "The account was deleted."
    for need_id in db.session.scalars(select(Need.id).where(
            Need.customer_id == user.id, Need.status.in_([NeedStatus.OPEN, NeedStatus.ASSIGNED]))):
        try:
            lifecycle.cancel(user, need_id, reason)
        except DomainError:  # it changed meanwhile (expired, completed): nothing to close
            db.session.rollback()
    for offer in list(db.session.scalars(select(Offer).where(_in(Offer.provider_id,
                                                                  who.provider_ids)))):
        try:
            if offer.status == OfferStatus.PENDING:
                offers.withdraw(user, offer.id)
            elif offer.status == OfferStatus.ACCEPTED and offer.need.status == NeedStatus.ASSIGNED:
                lifecycle.cancel(user, offer.need_id, reason)
        except DomainError:
            db.session.rollback()


def _scrub(value: Any, needles: list[str], points: dict[float, float]) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, needles, points) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, needles, points) for v in value]
    if isinstance(value, str) and any(n in value for n in needles):
        return ERASED
    if isinstance(value, float) and value in points:
        return points[value]
    return value


def _scrub_others_notifications(user: User, who: Who) -> None:
    """Other people's notifications quote the person (a message, their name, a need's
    title): those strings become the erased marker, exact coordinates the cell centre."""
    needles = [s for s in [user.name, user.first_name, user.email, user.phone] if s and len(s) >= 3]
    points: dict[float, float] = {}
    needs = list(db.session.scalars(select(Need).where(Need.customer_id == user.id)))
    for need in needs:
        needles += [s for s in (need.title, need.description, need.address) if s and len(s) >= 3]
        centre = grid_cell_centre(need.lat, need.lon)
        points[need.lat], points[need.lon] = centre
    for provider in db.session.scalars(select(Provider).where(Provider.user_id == user.id)):
        needles += [s for s in (provider.handle, provider.display_name, provider.bio)
                    if s and len(s) >= 3]
        centre = grid_cell_centre(provider.base_lat, provider.base_lon)
        points[provider.base_lat], points[provider.base_lon] = centre
    needles += [b for b in db.session.scalars(select(Message.body).where(
        Message.sender_id == user.id)) if len(b) >= 3]
    needles += [m for m in db.session.scalars(select(Offer.message).where(
        _in(Offer.provider_id, who.provider_ids))) if len(m) >= 3]
    t = db.metadata.tables["notifications"]
    probes = [*needles, *(repr(p) for p in points)]
    if not probes:
        return
    text = cast(t.c.data, Text)
    for start in range(0, len(probes), 50):
        chunk = probes[start:start + 50]
        rows = db.session.execute(select(t.c.id, t.c.data).where(
            t.c.user_id != user.id, or_(*(text.contains(p, autoescape=True) for p in chunk))))
        for note_id, data in rows.all():
            scrubbed = _scrub(data, needles, points)
            if scrubbed != data:
                db.session.execute(update(t).where(t.c.id == note_id).values(data=scrubbed))


def erase(user: User, password: str) -> None:
    """Erase ``user``'s personal data, confirmed by their password (403 naming ``password``
    otherwise, and nothing changes). What stays is what others hold: ratings (by "Former
    customer"), the threads and jobs they were part of, with the person's words and places
    replaced by markers and grid-cell centres."""
    if user.erased_at is not None or not accounts.verify_password(user, password):
        raise Forbidden("That is not your password.", {"password": ["That is not your password."]})
    who = Who.of(user.id)
    _close_dealings(user, who)
    who = Who.of(user.id)
    _scrub_others_notifications(user, who)
    sids = sessions.end_user(user.id)  # before the tokens go (their connections cascade)
    for section in reversed(SECTIONS):  # the user row last: the others read it first
        section.erase(db.metadata.tables[section.table], who)
    signal([user.id], ACCOUNT_ERASED, {})
    db.session.commit()
    sessions.cut(sids)  # every live connection, on whichever process holds it
    db.session.expire_all()


def export_shape() -> Iterable[tuple[str, str]]:
    """(table, what it holds) for the documentation."""
    return [(s.table, s.doc) for s in SECTIONS]

