"""Webhook operations: register, list, read, change, rotate the secret, remove; the outbox's
store hook that owes each subscribed webhook a delivery; and the delivery pass (claim due rows
under a lease, POST them signed, record the answer, retry with back-off, disable a webhook that
keeps failing and tell its owner)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from flask import current_app
from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.db_types import ID_SET_SQL, id_set, id_set_value, utcnow
from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.extensions import db
from marketplace.notifications import outbox
from marketplace.notifications.outbox import Event, Queued
from marketplace.notifications.types import NotificationType
from marketplace.pagination import paginate
from marketplace.webhooks import outbound
from marketplace.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

log = logging.getLogger(__name__)
SECRET_PREFIX = "whsec_"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


# --- secrets and signatures ---------------------------------------------------------------

def _cipher() -> Fernet:
    key = hmac.new(current_app.config["SECRET_KEY"].encode(), b"webhook-secrets",
                   hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def secret_of(webhook: Webhook) -> str:
    return _cipher().decrypt(webhook.secret.encode()).decode()


def signing_secrets(webhook: Webhook, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and during the overlap
    after a rotation (until ``previous_until``) the one it replaced."""
    secrets_ = [secret_of(webhook)]
    if webhook.previous_secret and webhook.previous_until and now < webhook.previous_until:
        secrets_.append(_cipher().decrypt(webhook.previous_secret.encode()).decode())
    return secrets_


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The Standard Webhooks signature ``v1,<base64 HMAC-SHA256>`` of one message."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- the user's webhooks ------------------------------------------------------------------

def _check_url(url: str) -> None:
    config = current_app.config
    try:
        outbound.check_url(url, allow_http=config["WEBHOOKS_ALLOW_HTTP"],
                           allow_private=config["WEBHOOKS_ALLOW_PRIVATE"])
    except outbound.Refused as e:
        raise Invalid("This URL cannot receive webhooks.", {"url": [str(e)]}) from e


def create(user: User, data: dict[str, Any]) -> tuple[Webhook, str]:
    """Register an endpoint; the secret is returned this once (only its encryption is kept)."""
    _check_url(data["url"])
    secret = new_secret()
    webhook = Webhook(user_id=user.id, url=data["url"], types=sorted(set(data["types"])),
                      secret=_encrypt(secret), enabled=True, failed_in_a_row=0)
    db.session.add(webhook)
    db.session.commit()
    return webhook, secret


def mine(user: User) -> list[Webhook]:
    return list(db.session.scalars(select(Webhook).where(Webhook.user_id == user.id)
                                   .order_by(Webhook.id.desc())))


def get(user: User, webhook_id: int) -> Webhook:
    """The caller's webhook; anyone else's is 404 (its existence is not revealed)."""
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None or webhook.user_id != user.id:
        raise NotFound("No such webhook.")
    return webhook


def change(user: User, webhook_id: int, data: dict[str, Any]) -> Webhook:
    """Change a webhook's ``url`` (checked as when registering), ``types`` or ``enabled``;
    what is left out stays. Enabling a disabled webhook resumes what it is still owed: its
    pending deliveries are due at once, and its count of failures starts again."""
    webhook = get(user, webhook_id)
    if "url" in data:
        _check_url(data["url"])
        webhook.url = data["url"]
    if "types" in data:
        webhook.types = sorted(set(data["types"]))
    if data.get("enabled") is True and not webhook.enabled:
        webhook.enabled, webhook.failed_in_a_row = True, 0
        db.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id,
                                           WebhookDelivery.status == PENDING)
            .values(next_at=utcnow(), lease_until=None))
    elif data.get("enabled") is False:
        webhook.enabled = False
    db.session.commit()
    return webhook


def rotate_secret(user: User, webhook_id: int) -> tuple[Webhook, str]:
    """A new signing secret, returned this once. The one it replaces goes on signing too for
    WEBHOOKS_SECRET_OVERLAP_SECONDS (each delivery then carries both signatures), so a
    receiver can switch without missing a delivery; an older one stops at once."""
    webhook = get(user, webhook_id)
    secret = new_secret()
    overlap = float(current_app.config["WEBHOOKS_SECRET_OVERLAP_SECONDS"])
    webhook.previous_secret = webhook.secret if overlap > 0 else None
    webhook.previous_until = utcnow() + timedelta(seconds=overlap) if overlap > 0 else None
    webhook.secret = _encrypt(secret)
    db.session.commit()
    return webhook, secret


def delete(user: User, webhook_id: int) -> None:
    db.session.delete(get(user, webhook_id))
    db.session.commit()


def deliveries(user: User, webhook_id: int, cursor: str | None,
               limit: int) -> tuple[Any, str | None]:
    """One page of a webhook's deliveries, newest first, with how each last went."""
    webhook = get(user, webhook_id)
    return paginate(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id),
                    WebhookDelivery.id, cursor, limit)


def _delivery(user: User, webhook_id: int, delivery_id: int) -> tuple[Webhook, WebhookDelivery]:
    webhook = get(user, webhook_id)
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook.id:
        raise NotFound("No such delivery.")
    return webhook, delivery


def attempts(user: User, webhook_id: int, delivery_id: int, cursor: str | None,
             limit: int) -> tuple[Any, str | None]:
    """One page of a delivery's attempts, newest first, each with what came back."""
    _webhook, delivery = _delivery(user, webhook_id, delivery_id)
    return paginate(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id),
                    WebhookAttempt.id, cursor, limit)


def replay(user: User, webhook_id: int, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again, now (the same ``webhook-id``: receivers deduplicate on it)."""
    webhook, delivery = _delivery(user, webhook_id, delivery_id)
    if not webhook.enabled:
        raise Conflict("The webhook is disabled.")
    delivery.status, delivery.next_at, delivery.lease_until = PENDING, utcnow(), None
    db.session.commit()
    return delivery


# --- the store hook -----------------------------------------------------------------------

# The enabled webhooks of a batch's recipients (not suspended, not erased), whatever their
# number, in one statement whose text never changes (``db_types.id_set``: an IN list of a
# fan-out's 1,000 ids was rendered anew each time, most of what a need cost this hook).
_HOOKS_OF = {
    dialect: text(
        "SELECT webhooks.id, webhooks.user_id, webhooks.types FROM webhooks "
        "JOIN users ON users.id = webhooks.user_id "
        f"WHERE webhooks.user_id IN {id_set(dialect)} AND webhooks.enabled "
        "AND users.suspended_at IS NULL AND users.erased_at IS NULL"
    ).columns(Webhook.id, Webhook.user_id, Webhook.types)
    for dialect in ID_SET_SQL
}


def owe_deliveries(session: Session,
                   queued: Queued) -> Callable[[list[tuple[int, Event]]], None] | None:
    """Outbox queue hook: one delivery per (notification, enabled webhook of its recipient that
    wants its type), written in the notification's transaction. The webhooks are read before
    the batch has its ids; the deliveries, which name them, are written once it has."""
    user_ids = list({uid for uid, _type, _data in queued})
    hooks: dict[int, list[tuple[int, list[str]]]] = {}
    dialect = session.get_bind().dialect.name
    for id_, uid, types in session.execute(_HOOKS_OF[dialect],
                                           {"ids": id_set_value(dialect, user_ids)}):
        hooks.setdefault(uid, []).append((id_, types))
    if not hooks:
        return None

    def owe(batch: list[tuple[int, Event]]) -> None:
        now = utcnow()
        owed = [{"webhook_id": id_, "notification_id": event["id"], "type": event["type"],
                 "payload": event.wire, "status": PENDING, "attempts": 0, "next_at": now,
                 "created_at": now}
                for uid, event in batch for id_, types in hooks.get(uid, ())
                if event["type"] in types]
        if owed:
            session.execute(WebhookDelivery.__table__.insert(), owed)

    return owe


# --- delivering ---------------------------------------------------------------------------

def schedule() -> list[float]:
    return [float(s) for s in str(current_app.config["WEBHOOKS_RETRY_SCHEDULE"]).split(",")
            if s.strip()]


def _due(now: datetime) -> Any:
    return (select(WebhookDelivery.id).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .join(User, User.id == Webhook.user_id)
            .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_at <= now,
                   or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
                   Webhook.enabled, User.suspended_at.is_(None), User.erased_at.is_(None))
            .order_by(WebhookDelivery.next_at, WebhookDelivery.id))


def claim(limit: int) -> list[int]:
    """Take up to ``limit`` due deliveries under a lease (WEBHOOKS_LEASE_SECONDS): no other
    worker takes them until it expires, so a worker that dies leaves them to the next."""
    now = utcnow()
    until = now + timedelta(seconds=current_app.config["WEBHOOKS_LEASE_SECONDS"])
    claimed: list[int] = []
    if db.engine.dialect.name == "postgresql":
        ids = list(db.session.scalars(_due(now).limit(limit)
                                      .with_for_update(of=WebhookDelivery, skip_locked=True)))
        if ids:
            db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
                               .values(lease_until=until))
        claimed = ids
    else:
        for id_ in db.session.scalars(_due(now).limit(limit)).all():
            won = db.session.execute(
                update(WebhookDelivery).where(
                    WebhookDelivery.id == id_, WebhookDelivery.status == PENDING,
                    or_(WebhookDelivery.lease_until.is_(None),
                        WebhookDelivery.lease_until < now))
                .values(lease_until=until)).rowcount
            if won == 1:
                claimed.append(id_)
    db.session.commit()
    return claimed


def headers_for(webhook: Webhook, delivery: WebhookDelivery, now: datetime) -> dict[str, str]:
    msg_id = f"msg_{delivery.notification_id}_{webhook.id}"
    timestamp = int(now.timestamp())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(sign(secret, msg_id, timestamp, delivery.payload)
                                          for secret in signing_secrets(webhook, now))}


def attempt(delivery_id: int) -> str:
    """POST one claimed delivery and record how it went; its new status."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != PENDING:
        db.session.rollback()
        return "gone"
    webhook = db.session.get(Webhook, delivery.webhook_id)
    assert webhook is not None
    url, payload = webhook.url, delivery.payload
    headers = headers_for(webhook, delivery, utcnow())
    db.session.rollback()  # no transaction held open across the network call
    config = current_app.config
    status: int | None = None
    body: str | None = None
    error: str | None = None
    started = utcnow()
    try:
        answer = outbound.post(url, payload.encode(), headers,
                               allow_http=config["WEBHOOKS_ALLOW_HTTP"],
                               allow_private=config["WEBHOOKS_ALLOW_PRIVATE"],
                               timeout=config["WEBHOOKS_TIMEOUT_SECONDS"],
                               max_bytes=config["WEBHOOKS_RESPONSE_MAX_BYTES"])
        status, body = answer.status, answer.body[:1000]
    except outbound.Refused as e:
        error = str(e)
    except Exception as e:  # network faults of any kind: the attempt failed, retry later
        error = f"{type(e).__name__}: {e}"[:500]
    now = utcnow()
    ok = status is not None and 200 <= status < 300
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        db.session.rollback()
        return "gone"
    delivery.attempts += 1
    delivery.response_status, delivery.response_body, delivery.error = status, body, error
    db.session.add(WebhookAttempt(
        delivery_id=delivery_id, attempted_at=started, response_status=status,
        response_body=body, error=error,
        duration_ms=max(0, round((now - started).total_seconds() * 1000))))
    delivery.lease_until = None
    waits = schedule()
    if ok:
        delivery.status, delivery.delivered_at = DELIVERED, now
        db.session.execute(update(Webhook).where(Webhook.id == delivery.webhook_id,
                                                 Webhook.failed_in_a_row != 0)
                           .values(failed_in_a_row=0))
    elif delivery.attempts > len(waits):
        delivery.status = FAILED
    else:
        wait = waits[delivery.attempts - 1]
        delivery.next_at = now + timedelta(seconds=wait * random.uniform(0.8, 1.2))
    new_status = delivery.status
    if new_status == FAILED:
        _count_failure(delivery)
    db.session.commit()
    return new_status


def _last_error(delivery: WebhookDelivery) -> str:
    if delivery.error:
        return delivery.error
    return f"HTTP {delivery.response_status}"


def _count_failure(delivery: WebhookDelivery) -> None:
    """Count a delivery that failed every attempt; at WEBHOOKS_DISABLE_AFTER in a row the
    webhook is disabled and its owner told (``webhook.disabled``: stored, live, and delivered
    to the owner's other webhooks that want it -- not to this one, disabled in the same
    transaction before the notice is stored)."""
    n = current_app.config["WEBHOOKS_DISABLE_AFTER"]
    # One UPDATE ... RETURNING: two deliveries of one webhook failing at once in two workers
    # both count (the second waits for the first's row lock on PostgreSQL; SQLite's writers
    # take turns anyway).
    row = db.session.execute(
        update(Webhook).where(Webhook.id == delivery.webhook_id)
        .values(failed_in_a_row=Webhook.failed_in_a_row + 1)
        .returning(Webhook.failed_in_a_row, Webhook.enabled, Webhook.user_id, Webhook.url)
    ).one_or_none()
    if row is None:
        return
    failed, enabled, user_id, url = row
    if failed < n or not enabled:
        return
    db.session.execute(update(Webhook).where(Webhook.id == delivery.webhook_id)
                       .values(enabled=False))
    log.warning("webhook %s disabled after %s failed deliveries", delivery.webhook_id, failed)
    outbox.notify([user_id], NotificationType.WEBHOOK_DISABLED, {
        "webhook_id": delivery.webhook_id, "url": url, "failed_deliveries": failed,
        "last_delivery_id": delivery.id, "last_status": delivery.response_status,
        "last_error": _last_error(delivery)})


def deliver_due(limit: int = 50) -> int:
    """One pass: claim what is due and attempt it, a few at a time
    (WEBHOOKS_CONCURRENCY), so one slow receiver does not hold up the others. How many were
    attempted."""
    ids = claim(limit)
    if not ids:
        return 0
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run(id_: int) -> str:
        with app.app_context():
            try:
                return attempt(id_)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=app.config["WEBHOOKS_CONCURRENCY"]) as pool:
        list(pool.map(run, ids))
    return len(ids)


def payload_json(delivery: WebhookDelivery) -> Any:
    return json.loads(delivery.payload)
