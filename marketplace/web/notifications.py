"""The notifications page: everything that happened, newest first, and marking it read."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.notifications import services
from marketplace.notifications.models import Notification
from marketplace.notifications.schemas import MarkReadSchema
from marketplace.web import forms
from marketplace.web.forms import FormErrors, FormInvalid, safe_next

bp = Blueprint("notifications", __name__)


def describe(note: Notification) -> tuple[str, str | None]:
    """A sentence and a link for one notification."""
    d = note.data
    need = d.get("need") or {}
    need_id = d.get("need_id") or need.get("id")
    link = url_for("needs.show", need_id=need_id) if need_id and "needs.show" in \
        current_app.view_functions else None
    offer = d.get("offer") or {}
    who = (offer.get("provider") or {}).get("display_name", "A provider")
    text = {
        "need.matched": f"New need near you: {need.get('title')}",
        "offer.received": f"{who} made an offer",
        "offer.revised": f"{who} revised their offer",
        "offer.withdrawn": f"{who} withdrew their offer",
        "offer.accepted": f"Your offer was accepted: {need.get('title')}",
        "offer.declined": f"Your offer was declined: {need.get('title')} — {d.get('reason', '')}",
        "need.cancelled": f"Cancelled: {need.get('title')}"
                          + (f" — “{d['reason']}”" if d.get("reason") else ""),
        "need.expired": f"Expired without a taker: {need.get('title')}",
        "need.completed": f"Marked completed: {need.get('title')}",
        "message.received": f"{d.get('sender_name')}: {d.get('body')}",
        "rating.received": f"You got {d.get('stars')}★ for {d.get('title')}",
        "rating.replied": f"{d.get('provider')} replied to your rating",
    }.get(note.type, note.type)
    return text, link


def _render_index(errors: FormErrors | None = None) -> Any:
    items = services.recent(current_user.id, 100)
    return render_template("notifications.html", items=[(n, *describe(n)) for n in items],
                           unread_ids={n.id for n in items if n.read_at is None},
                           errors=errors or {})


@bp.route("/notifications")
@login_required
def index() -> Any:
    """Everything that happened, newest first. Reading it changes nothing: what is unread stays
    highlighted until it is marked read (a POST), so no link from elsewhere can clear the bell."""
    return _render_index()


@bp.route("/notifications/read", methods=["POST"])
@login_required
def mark_read() -> Any:
    """Mark read what the page showed: all of it (``up_to``, the newest id on the page, so what
    arrived since stays unread) or one (``ids``)."""
    values: dict[str, Any] = {k: request.form.get(k, "") for k in ("up_to",) if k in request.form}
    if "ids" in request.form:
        values["ids"] = request.form.getlist("ids")
    try:
        data = forms.load(MarkReadSchema(), values, aliases={"ids": "_form", "up_to": "_form"})
    except FormInvalid as exc:
        return _render_index(exc.errors)
    services.mark_read(current_user, data.get("ids"), data.get("up_to"))
    return redirect(safe_next(url_for("notifications.index")))
