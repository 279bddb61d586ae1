"""The one list of notification types, and the sentence each one says to its recipient.

``notify`` takes only these; the REST feed, the Socket.IO ``notification`` event and the
notifications page all carry ``text``, rendered here on the server from the stored payload,
so every client shows the same words. ``docs/events.md`` lists the same types (a test ties
them together)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any


class NotificationType(enum.StrEnum):
    NEED_MATCHED = "need.matched"
    OFFER_RECEIVED = "offer.received"
    OFFER_REVISED = "offer.revised"
    OFFER_WITHDRAWN = "offer.withdrawn"
    OFFER_ACCEPTED = "offer.accepted"
    OFFER_DECLINED = "offer.declined"
    NEED_UPDATED = "need.updated"
    NEED_CANCELLED = "need.cancelled"
    NEED_EXPIRED = "need.expired"
    NEED_COMPLETED = "need.completed"
    MESSAGE_RECEIVED = "message.received"
    RATING_RECEIVED = "rating.received"
    RATING_REPLIED = "rating.replied"
    WEBHOOK_DISABLED = "webhook.disabled"


def _title(d: dict[str, Any]) -> str:
    return str((d.get("need") or {}).get("title") or d.get("title") or "your need")


def _offerer(d: dict[str, Any]) -> str:
    return str(((d.get("offer") or {}).get("provider") or {}).get("display_name")
               or "A provider")


def _cancelled(d: dict[str, Any]) -> str:
    reason = d.get("reason")
    return f"Cancelled: {_title(d)}" + (f" — “{reason}”" if reason else "")


_TEXT: dict[NotificationType, Callable[[dict[str, Any]], str]] = {
    NotificationType.NEED_MATCHED: lambda d: f"New need near you: {_title(d)}",
    NotificationType.OFFER_RECEIVED: lambda d: f"{_offerer(d)} made an offer",
    NotificationType.OFFER_REVISED: lambda d: f"{_offerer(d)} revised their offer",
    NotificationType.OFFER_WITHDRAWN: lambda d: f"{_offerer(d)} withdrew their offer",
    NotificationType.OFFER_ACCEPTED: lambda d: f"Your offer was accepted: {_title(d)}",
    NotificationType.OFFER_DECLINED: lambda d: f"Your offer was declined: {_title(d)}"
    + (f" — {d['reason']}" if d.get("reason") else ""),
    NotificationType.NEED_UPDATED: lambda d: f"The customer changed a need you offered on: {_title(d)}",
    NotificationType.NEED_CANCELLED: _cancelled,
    NotificationType.NEED_EXPIRED: lambda d: f"Expired without a taker: {_title(d)}",
    NotificationType.NEED_COMPLETED: lambda d: f"Marked completed: {_title(d)}",
    NotificationType.MESSAGE_RECEIVED: lambda d: f"{d.get('sender_name') or 'Someone'}: "
    f"{d.get('body', '')}",
    NotificationType.RATING_RECEIVED: lambda d: f"You got {d.get('stars')}★ for {_title(d)}",
    NotificationType.RATING_REPLIED: lambda d: f"{d.get('provider')} replied to your rating",
    NotificationType.WEBHOOK_DISABLED: lambda d: f"Your webhook {d.get('url')} was disabled "
    f"after {d.get('failed_deliveries')} failed deliveries: {d.get('last_error')}",
}
assert set(_TEXT) == set(NotificationType), "every type says something"


def text(type_: str, data: dict[str, Any]) -> str:
    """The sentence a notification of ``type_`` with payload ``data`` says to its recipient."""
    return _TEXT[NotificationType(type_)](data)
