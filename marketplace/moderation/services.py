"""Reporting and moderating. Every rule is here, so the API and the pages obey the same:

- a report names something its reporter can see now (else 404, as for anything they cannot
  see: reporting is no way to learn what exists), once while it is open (409);
- only admins (``users.is_admin``) read the queue or act; anyone else gets 404;
- hiding sets ``hidden_at``/``hidden_by`` on the row (kept for audit), and every reader
  outside this queue gets 404 for it (the features' ``get``s and lists skip hidden rows; a
  hidden need is no longer matched, a hidden profile leaves the matching index);
- suspending sets ``users.suspended_at`` and, in the same transaction, ends every web session
  and live connection (cut once committed); API tokens are refused while it lasts
  (``accounts.auth.token_for``) and the provider leaves the matching index;
- every action writes one ``moderation_log`` row in the transaction it logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, cast, or_, select, update
from sqlalchemy.exc import IntegrityError

from marketplace import access
from marketplace.accounts import sessions
from marketplace.accounts.models import User
from marketplace.db_types import utcnow
from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.extensions import db
from marketplace.media import services as media
from marketplace.messages.models import Message
from marketplace.moderation.models import (
    Action,
    ModerationLog,
    Report,
    ReportStatus,
    TargetType,
)
from marketplace.needs.models import Need
from marketplace.notifications.models import Notification
from marketplace.offers import services as offers
from marketplace.offers.models import Offer
from marketplace.providers import services as providers
from marketplace.providers.matching import sync_coverage
from marketplace.providers.models import Provider
from marketplace.ratings import services as ratings
from marketplace.ratings.models import Rating
from marketplace.signals import services as signals

MODELS: dict[TargetType, Any] = {TargetType.NEED: Need, TargetType.OFFER: Offer,
                                 TargetType.MESSAGE: Message, TargetType.RATING: Rating,
                                 TargetType.PROFILE: Provider, TargetType.USER: User}


# Reporting ------------------------------------------------------------------------------------


def _visible(user: User, target_type: TargetType, target_id: int | None,
             handle: str | None) -> tuple[int, int | None]:
    """(target id, its author's user id) of what ``user`` may see; NotFound otherwise."""
    if target_type == TargetType.NEED:
        assert target_id is not None
        need, _role = access.need_with_role(user, target_id)
        return need.id, need.customer_id
    if target_type == TargetType.OFFER:
        assert target_id is not None
        offer, _role = offers.offer_with_role(user, target_id)
        return offer.id, offer.provider.user_id
    if target_type == TargetType.MESSAGE:
        message = db.session.get(Message, target_id)
        if message is None or message.hidden_at is not None:
            raise NotFound("No such message.")
        try:
            offers.offer_with_role(user, message.offer_id)
        except NotFound:
            raise NotFound("No such message.") from None
        return message.id, message.sender_id
    if target_type == TargetType.RATING:
        assert target_id is not None
        rating = ratings.get(target_id)
        if rating.provider.hidden_at is not None or rating.provider.erased_at is not None:
            raise NotFound("No such rating.")  # shown only on a profile one can see
        return rating.id, rating.customer_id
    if target_type == TargetType.PROFILE:
        provider = providers.by_handle(handle or "")
        return provider.id, provider.user_id
    raise NotFound("Nothing to report there.")


def report(user: User, data: dict[str, Any]) -> Report:
    target_type = TargetType(data["target_type"])
    target_id, author = _visible(user, target_type, data.get("target_id"), data.get("handle"))
    if author == user.id:
        raise Invalid("That is your own; you cannot report it.",
                      {"target_type": ["You cannot report your own content."]})
    row = Report(reporter_id=user.id, target_type=target_type, target_id=target_id,
                 target_user_id=author, reason=data["reason"], details=data.get("details", ""),
                 status=ReportStatus.OPEN)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("You already reported this; an admin will look at it.") from None
    return row


def mine(user: User) -> Sequence[Report]:
    return db.session.scalars(select(Report).where(Report.reporter_id == user.id)
                              .order_by(Report.id.desc())).all()


# Admin ----------------------------------------------------------------------------------------


def require_admin(user: User | None) -> User:
    """The admin, or NotFound: admin routes do not exist for anyone else."""
    if user is None or not getattr(user, "is_admin", False):
        raise NotFound("Not found.")
    return user


def queue(admin: User, limit: int = 100) -> list[dict[str, Any]]:
    """Open reports, newest first, each with the reported content as stored."""
    require_admin(admin)
    rows = db.session.scalars(select(Report).where(Report.status == ReportStatus.OPEN)
                              .order_by(Report.id.desc()).limit(limit)).all()
    return [{**{c: getattr(r, c) for c in ("id", "target_type", "target_id", "reason",
                                           "details", "status", "created_at", "reporter_id",
                                           "target_user_id")},
             "target": target_content(r.target_type, r.target_id)} for r in rows]


def target_content(target_type: TargetType, target_id: int) -> dict[str, Any]:
    """What an admin reads of a target, hidden or not (the stored text, unmasked)."""
    row = db.session.get(MODELS[target_type], target_id)
    if row is None:
        return {"missing": True}
    if target_type == TargetType.NEED:
        return {"text": f"{row.title}\n{row.description}", "author_id": row.customer_id,
                "hidden": row.hidden_at is not None, "link": f"/needs/{row.id}"}
    if target_type == TargetType.OFFER:
        return {"text": row.message, "author_id": row.provider.user_id,
                "hidden": row.hidden_at is not None, "link": f"/needs/{row.need_id}"}
    if target_type == TargetType.MESSAGE:
        return {"text": row.body, "author_id": row.sender_id,
                "hidden": row.hidden_at is not None, "link": f"/needs/{row.offer.need_id}"}
    if target_type == TargetType.RATING:
        return {"text": f"{row.stars}/5 {row.comment}", "author_id": row.customer_id,
                "hidden": row.hidden_at is not None, "link": f"/p/{row.provider.handle}"}
    if target_type == TargetType.PROFILE:
        return {"text": f"{row.display_name} (@{row.handle})\n{row.bio}",
                "author_id": row.user_id, "hidden": row.hidden_at is not None,
                "link": f"/p/{row.handle}"}
    return {"text": row.name, "author_id": row.id, "hidden": False,
            "suspended": row.suspended_at is not None, "link": ""}


HIDDEN = "[hidden by moderation]"


def _texts(target_type: TargetType, row: Any) -> list[str]:
    """The free text of a row that notifications may quote."""
    texts = {TargetType.NEED: lambda: [row.title, row.description, row.cancel_reason],
             TargetType.OFFER: lambda: [row.message],
             TargetType.MESSAGE: lambda: [row.body],
             TargetType.RATING: lambda: [row.comment, row.reply],
             TargetType.PROFILE: lambda: [row.display_name, row.bio]}[target_type]()
    return [t for t in texts if t and len(t) >= 3]


def _scrub(value: Any, needles: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, needles) for v in value]
    if isinstance(value, str) and any(n in value for n in needles):
        return HIDDEN
    return value


def _scrub_notifications(needles: list[str]) -> None:
    """Notifications that quote hidden content (a need's title in ``need.matched``, a message
    body) read the hidden marker instead, for every recipient: the bell and its replay are a
    way in too. Unhiding does not restore them; the content itself is back on its pages."""
    if not needles:
        return
    text = cast(Notification.data, Text)
    rows = db.session.execute(select(Notification.id, Notification.data).where(
        or_(*(text.contains(n, autoescape=True) for n in needles))))
    for note_id, data in rows.all():
        scrubbed = _scrub(data, needles)
        if scrubbed != data:
            db.session.execute(update(Notification).where(Notification.id == note_id)
                               .values(data=scrubbed).execution_options(
                                   synchronize_session=False))


def _author(target_type: TargetType, row: Any) -> int | None:
    return {TargetType.NEED: lambda: row.customer_id,
            TargetType.OFFER: lambda: row.provider.user_id,
            TargetType.MESSAGE: lambda: row.sender_id,
            TargetType.RATING: lambda: row.customer_id,
            TargetType.PROFILE: lambda: row.user_id,
            TargetType.USER: lambda: row.id}[target_type]()


def _log(admin: User, action: Action, target_type: TargetType, target_id: int,
         subject: int | None, reason: str, report_id: int | None) -> ModerationLog:
    entry = ModerationLog(admin_id=admin.id, action=action, target_type=target_type,
                          target_id=target_id, subject_user_id=subject, report_id=report_id,
                          reason=reason, at=utcnow())
    db.session.add(entry)
    return entry


def _resolve(admin: User, target_type: TargetType, target_id: int) -> int:
    """Close the open reports on a target that was acted on; how many."""
    result = db.session.execute(
        update(Report).where(Report.target_type == target_type, Report.target_id == target_id,
                             Report.status == ReportStatus.OPEN)
        .values(status=ReportStatus.ACTIONED, resolved_at=utcnow(), resolved_by=admin.id)
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def act(admin: User, data: dict[str, Any]) -> dict[str, Any]:
    """Hide, unhide, suspend or unsuspend; logged, and open reports on the target closed."""
    require_admin(admin)
    action, target_type = Action(data["action"]), TargetType(data["target_type"])
    row = db.session.get(MODELS[target_type], data["target_id"])
    if row is None:
        raise NotFound(f"No such {target_type.value}.")
    report_id = data.get("report_id")
    if report_id is not None and db.session.get(Report, report_id) is None:
        raise Invalid("No such report.", {"report_id": ["No such report."]})
    now, sids, resolved = utcnow(), [], 0
    if action == Action.HIDE:
        if row.hidden_at is not None:
            raise Conflict(f"This {target_type.value} is hidden already.")
        row.hidden_at, row.hidden_by = now, admin.id
        if target_type == TargetType.NEED:
            media.remove_photos_of_needs([row.id])  # a hidden need's photos are not kept
        resolved = _resolve(admin, target_type, row.id)
        _scrub_notifications(_texts(target_type, row))
    elif action == Action.UNHIDE:
        if row.hidden_at is None:
            raise Conflict(f"This {target_type.value} is not hidden.")
        row.hidden_at, row.hidden_by = None, None
    elif action == Action.SUSPEND:
        if row.id == admin.id:
            raise Invalid("You cannot suspend yourself.", {"target_id": ["That is you."]})
        if row.suspended_at is not None:
            raise Conflict("This account is suspended already.")
        row.suspended_at = now
        sids = sessions.end_user(row.id)
        resolved = _resolve(admin, target_type, row.id)
    else:
        if row.suspended_at is None:
            raise Conflict("This account is not suspended.")
        row.suspended_at = None
    if target_type in (TargetType.PROFILE, TargetType.USER):
        provider = row if target_type == TargetType.PROFILE else db.session.scalar(
            select(Provider).where(Provider.user_id == row.id))
        if provider is not None:
            db.session.flush()
            sync_coverage(provider)  # in or out of the matching index with the change
    if target_type == TargetType.NEED or (target_type == TargetType.USER
                                          and action in (Action.SUSPEND, Action.UNSUSPEND)):
        db.session.flush()
        _recount_trends(row.customer_id if target_type == TargetType.NEED else row.id)
    entry = _log(admin, action, target_type, row.id, _author(target_type, row),
                 data.get("reason", ""), report_id)
    db.session.commit()
    sessions.cut(sids)
    return {"log": entry, "resolved_reports": resolved}


def _recount_trends(customer_id: int | None) -> None:
    """Trends count only the needs that count: not hidden, their customer not suspended."""
    if customer_id is None:
        return
    customer = db.session.get(User, customer_id)
    needs: list[tuple[int, float, float, Any]] = []
    if customer is not None and customer.suspended_at is None:
        needs = [tuple(r) for r in db.session.execute(  # type: ignore[misc]
            select(Need.id, Need.lat, Need.lon, Need.created_at)
            .where(Need.customer_id == customer_id, Need.hidden_at.is_(None)))]
    signals.recount(customer_id, needs)


def dismiss(admin: User, report_id: int, reason: str) -> ModerationLog:
    require_admin(admin)
    row = db.session.get(Report, report_id)
    if row is None:
        raise NotFound("No such report.")
    if row.status != ReportStatus.OPEN:
        raise Conflict(f"This report is {row.status.value} already.")
    row.status, row.resolved_at, row.resolved_by = ReportStatus.DISMISSED, utcnow(), admin.id
    entry = _log(admin, Action.DISMISS, row.target_type, row.target_id, row.target_user_id,
                 reason, row.id)
    db.session.commit()
    return entry


def log(admin: User, limit: int = 100) -> Sequence[ModerationLog]:
    require_admin(admin)
    return db.session.scalars(select(ModerationLog).order_by(ModerationLog.id.desc())
                              .limit(limit)).all()


# The CLI --------------------------------------------------------------------------------------


def set_admin(email: str, value: bool) -> User:
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.erased_at is not None:
        raise NotFound(f"No account with e-mail {email!r}.")
    user.is_admin = value
    db.session.commit()
    return user
