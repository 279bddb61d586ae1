"""E-mail alerts for providers whose page is closed.

Opt-in, off by default: per category, for direct asks (an @mention, a need sent to
favourites) and for the tags one subscribes to (``settings``, ``save``).

Queue: ``queue_matched`` is an ``outbox.on_queue`` hook, so a matched need is queued for a
provider's alert in the very transaction that stores its ``need.matched`` notification -- never
one without the other. Providers who are online then (a live connection) are not queued.

Send: ``send_due`` (the server's loop, ``flask send-alerts``) mails each provider who is due --
queued needs, and no mail in the last ``ALERTS_INTERVAL_SECONDS`` -- one mail listing them.
Whether to mail is decided again at send time: a provider online by then, suspended, erased or
paused gets none, and needs that closed, expired, were hidden, or that the provider may no
longer see (a block) are left out.

A provider's batch is claimed with a lease (``alert_settings.lease_until``, committed before
the mail goes out) and the mail is recorded (rows deleted, ``last_sent_at`` set, lease
cleared) in one transaction after the SMTP server took it. So two senders never mail the same
batch while a lease holds, and a sender that fails to send leaves the batch for the next pass.
The edge, honestly: a sender killed after the SMTP server accepted the mail and before that
commit leaves the lease to run out, and the next pass mails the batch again -- at least once,
not exactly once. The repeat carries the same ``Message-ID`` (from the batch's rows), which
mail clients that de-duplicate use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from marketplace import mail
from marketplace.accounts.models import LiveConnection, User
from marketplace.accounts.sessions import stale_before
from marketplace.alerts.models import AlertCategory, AlertSettings, QueuedAlert
from marketplace.db_types import utcnow
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.money import format_amount
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedRecipient, NeedStatus
from marketplace.needs.presenters import summary
from marketplace.notifications.outbox import Queued
from marketplace.notifications.types import NotificationType
from marketplace.providers import services as providers
from marketplace.providers.models import Category, Provider

log = logging.getLogger(__name__)

_SALT = "alerts-unsubscribe"
#: The most needs one mail lists (the rest wait for the next mail).
MAX_PER_MAIL = 20


class BadUnsubscribeLink(DomainError):
    status = 400
    code = "BAD_UNSUBSCRIBE_LINK"


# --- settings -------------------------------------------------------------------------------


def settings(user: User) -> dict[str, Any]:
    """What ``user`` is alerted about: ``{categories: [slug], direct_asks, tags}``."""
    row = db.session.get(AlertSettings, user.id)
    slugs = db.session.scalars(
        select(Category.slug).join(AlertCategory, AlertCategory.category_id == Category.id)
        .where(AlertCategory.user_id == user.id).order_by(Category.slug)).all()
    return {"categories": list(slugs), "direct_asks": bool(row and row.direct_asks),
            "tags": bool(row and row.tags)}


def save(user: User, data: dict[str, Any]) -> dict[str, Any]:
    """Replace ``user``'s alert settings. Categories are slugs (an unknown one is refused).
    Needs already queued for what is now off are dropped."""
    ids = [c.id for c in providers.categories_by_slugs(data.get("categories", []))]
    row = db.session.get(AlertSettings, user.id)
    if row is None:
        row = AlertSettings(user_id=user.id)
        db.session.add(row)
    row.direct_asks = bool(data.get("direct_asks", False))
    row.tags = bool(data.get("tags", False))
    db.session.execute(delete(AlertCategory).where(AlertCategory.user_id == user.id))
    if ids:
        db.session.execute(insert(AlertCategory),
                           [{"user_id": user.id, "category_id": i} for i in ids])
    db.session.execute(delete(QueuedAlert).where(QueuedAlert.user_id == user.id,
                                                 _switched_off(row, ids)))
    db.session.commit()
    return settings(user)


def _switched_off(row: AlertSettings, category_ids: list[int]) -> Any:
    """Queued rows whose reason is no longer on."""
    kept = [(QueuedAlert.reason == "category")
            & QueuedAlert.need_id.in_(select(Need.id).where(Need.category_id.in_(category_ids)))]
    if row.direct_asks:
        kept.append(QueuedAlert.reason == "direct")
    if row.tags:
        kept.append(QueuedAlert.reason == "tag")
    return ~or_(*kept)


def unsubscribe(user_id: int) -> None:
    """Every alert off and nothing left queued (the one-click link; idempotent)."""
    db.session.execute(delete(AlertCategory).where(AlertCategory.user_id == user_id))
    db.session.execute(update(AlertSettings).where(AlertSettings.user_id == user_id)
                       .values(direct_asks=False, tags=False))
    db.session.execute(delete(QueuedAlert).where(QueuedAlert.user_id == user_id))
    db.session.commit()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def unsubscribe_token(user_id: int) -> str:
    """A signed token naming ``user_id``: the unsubscribe link needs no sign-in."""
    return _serializer().dumps(user_id)


def user_of_token(token: str) -> int:
    """The user id an unsubscribe token names; ``BadUnsubscribeLink`` for a forged, altered or
    expired one (and for an account that no longer exists)."""
    max_age = current_app.config["ALERTS_UNSUBSCRIBE_DAYS"] * 86400
    try:
        user_id = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise BadUnsubscribeLink(
            "This unsubscribe link has expired. Sign in and switch alerts off on the alerts "
            "page, or use the link in a newer alert.") from None
    except BadSignature:
        raise BadUnsubscribeLink(
            "This unsubscribe link is not one we sent (it may have been cut short by your "
            "mail program). Sign in and switch alerts off on the alerts page.") from None
    if not isinstance(user_id, int) or db.session.get(User, user_id) is None:
        raise BadUnsubscribeLink("This unsubscribe link names no account.")
    return user_id


# --- queueing (in the notifications' transaction) -------------------------------------------


def online_user_ids(session: Session, user_ids: Iterable[int]) -> set[int]:
    """Which of these users have a live (not stale) connection now."""
    ids = list(user_ids)
    if not ids:
        return set()
    return set(session.scalars(select(LiveConnection.user_id).where(
        LiveConnection.user_id.in_(ids), LiveConnection.connected_at >= stale_before())))


def queue_matched(session: Session, queued: Queued) -> None:
    """The ``outbox.on_queue`` hook: queue each ``need.matched`` whose recipient wants an alert
    for it. Reads only opted-in users (few), never every recipient of a large fan-out. All of it
    is done before the notifications get their ids (nothing here names them), so none of it
    holds up another commit that stores notifications."""
    by_need: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    matched = NotificationType.NEED_MATCHED
    for uid, type_, data in queued:
        if type_ is matched:
            need = data["need"]
            by_need.setdefault(need["id"], []).append((uid, need))
    if not by_need:
        return
    rows = []
    # who wants any alert beyond their categories (opted-in users: few)
    flags: dict[int, tuple[bool, bool]] = {uid: (d, t) for uid, d, t in session.execute(
        select(AlertSettings.user_id, AlertSettings.direct_asks, AlertSettings.tags)
        .where(or_(AlertSettings.direct_asks, AlertSettings.tags)))}
    for need_id, recipients in by_need.items():
        slug = recipients[0][1]["category"]
        wanted = set(session.scalars(
            select(AlertCategory.user_id).join(Category, Category.id == AlertCategory.category_id)
            .where(Category.slug == slug)))
        reasons: dict[int, str] = {}
        tagged: set[int] | None = None
        for uid, need in recipients:
            if uid not in wanted and uid not in flags:
                continue  # wants no alert at all (most of a large fan-out)
            direct, tags = flags.get(uid, (False, False))
            if need.get("direct"):
                if direct or uid in wanted:
                    reasons[uid] = "direct" if direct else "category"
            elif uid in wanted:
                reasons[uid] = "category"
            elif tags:
                if tagged is None:
                    tagged = set(session.scalars(
                        select(Provider.user_id).join(NeedRecipient,
                                                      NeedRecipient.provider_id == Provider.id)
                        .where(NeedRecipient.need_id == need_id, NeedRecipient.via == "tag")))
                if uid in tagged:
                    reasons[uid] = "tag"
        online = online_user_ids(session, reasons)
        rows.extend({"user_id": uid, "need_id": need_id, "reason": reason}
                    for uid, reason in reasons.items() if uid not in online)
    if rows:
        now = utcnow()
        session.execute(insert(QueuedAlert), [{**row, "queued_at": now} for row in rows])


# --- sending --------------------------------------------------------------------------------


def due_user_ids(now: datetime) -> list[int]:
    """Providers with queued needs, not mailed within the interval, whose batch nobody holds."""
    since = now - timedelta(seconds=current_app.config["ALERTS_INTERVAL_SECONDS"])
    return list(db.session.scalars(
        select(QueuedAlert.user_id).distinct()
        .outerjoin(AlertSettings, AlertSettings.user_id == QueuedAlert.user_id)
        .where(or_(AlertSettings.last_sent_at.is_(None), AlertSettings.last_sent_at <= since),
               or_(AlertSettings.lease_until.is_(None), AlertSettings.lease_until <= now))
        .order_by(QueuedAlert.user_id)))


def _claim(user_id: int, now: datetime) -> datetime | None:
    """Take ``user_id``'s batch for one lease (committed); None when another sender holds it or
    they were mailed within the interval meanwhile."""
    config = current_app.config
    since = now - timedelta(seconds=config["ALERTS_INTERVAL_SECONDS"])
    until = now + timedelta(seconds=config["ALERTS_LEASE_SECONDS"])
    taken = db.session.execute(
        update(AlertSettings).where(
            AlertSettings.user_id == user_id,
            or_(AlertSettings.lease_until.is_(None), AlertSettings.lease_until <= now),
            or_(AlertSettings.last_sent_at.is_(None), AlertSettings.last_sent_at <= since))
        .values(lease_until=until)).rowcount
    db.session.commit()
    return until if taken == 1 else None


def _release(user_id: int, lease: datetime, *, sent_at: datetime | None,
             done: Sequence[int]) -> None:
    """Delete the rows ``done`` (mailed, or left out for good) and give the lease back, setting
    ``last_sent_at`` when a mail went out: one transaction."""
    if done:
        db.session.execute(delete(QueuedAlert).where(QueuedAlert.id.in_(list(done))))
    values: dict[str, Any] = {"lease_until": None}
    if sent_at is not None:
        values["last_sent_at"] = sent_at
    db.session.execute(update(AlertSettings).where(AlertSettings.user_id == user_id,
                                                   AlertSettings.lease_until == lease)
                       .values(**values))
    db.session.commit()


def _still_wanted(row: QueuedAlert, need: Need, settings_: AlertSettings,
                  category_ids: set[int]) -> bool:
    if row.reason == "category":
        return need.category_id in category_ids
    return settings_.direct_asks if row.reason == "direct" else settings_.tags


def send_due(now: datetime | None = None) -> int:
    """One send pass: mail every provider who is due. How many mails went out."""
    now = now or utcnow()
    sent = 0
    for user_id in due_user_ids(now):
        try:
            sent += send_to(user_id, now)
        except Exception:  # one provider's failure never stops the others
            db.session.rollback()
            log.exception("alert mail to user %s failed", user_id)
    return sent


def send_to(user_id: int, now: datetime) -> bool:
    """Claim, decide and mail one provider's batch; whether a mail went out."""
    lease = _claim(user_id, now)
    if lease is None:
        return False
    rows = list(db.session.scalars(select(QueuedAlert).where(QueuedAlert.user_id == user_id)
                                   .order_by(QueuedAlert.id)))
    user = db.session.get(User, user_id)
    provider = db.session.scalar(select(Provider).where(Provider.user_id == user_id))
    if (user is None or provider is None or user.erased_at is not None
            or user.suspended_at is not None or not provider.takes_work
            or online_user_ids(db.session, [user_id])):
        # online: the page shows these needs already; the others get nothing at all
        _release(user_id, lease, sent_at=None, done=[r.id for r in rows])
        return False
    settings_ = db.session.get(AlertSettings, user_id)
    assert settings_ is not None  # claimed above
    category_ids = set(db.session.scalars(select(AlertCategory.category_id)
                                          .where(AlertCategory.user_id == user_id)))
    listed: list[tuple[QueuedAlert, Need]] = []
    dropped: list[int] = []
    seen: set[int] = set()
    for row in rows:
        if len(listed) >= MAX_PER_MAIL:  # the rest wait for the next mail
            break
        need = db.session.get(Need, row.need_id)
        if (need is None or row.need_id in seen or need.status != NeedStatus.OPEN
                or need.expires_at <= now or not needs.matches(provider, need)
                or not _still_wanted(row, need, settings_, category_ids)):
            dropped.append(row.id)
            continue
        seen.add(row.need_id)
        listed.append((row, need))
    if not listed:
        _release(user_id, lease, sent_at=None, done=dropped)
        return False
    took = _mail(user, [need for _row, need in listed], batch=f"{user_id}.{listed[0][0].id}")
    if not took:  # the SMTP server is away or refused: the batch waits for the next pass
        _release(user_id, lease, sent_at=None, done=dropped)
        return False
    _release(user_id, lease, sent_at=now, done=[*dropped, *(row.id for row, _need in listed)])
    return True


def _mail(user: User, listed: list[Need], *, batch: str) -> bool:
    path = f"/alerts/unsubscribe/{unsubscribe_token(user.id)}"
    unsubscribe_url = mail.link(path)
    items = []
    for need in listed:
        shown = summary(need)
        items.append({"title": shown["title"], "place": shown.get("place") or "Near you",
                      "budget": format_amount(need.budget_amount, need.budget_currency,
                                              user.locale),
                      "url": mail.link(f"/needs/{need.id}")})
    domain = current_app.config["PUBLIC_URL"].split("://", 1)[-1].split("/", 1)[0]
    headers = {"List-Unsubscribe": f"<{unsubscribe_url}>",
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
               "Message-ID": f"<alerts.{batch}@{domain}>"}
    return mail.send(user.email, "alerts", headers=headers, user=user, needs=items,
                     unsubscribe_url=unsubscribe_url, settings_url=mail.link("/alerts"))
