"""The notifications page: everything that happened, newest first, and marking it read."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.notifications import services
from marketplace.notifications.models import Notification
from marketplace.notifications.schemas import MarkReadSchema
from marketplace.web import forms
from marketplace.web.forms import FormErrors, FormInvalid, safe_next

bp = Blueprint("notifications", __name__)


def link(note: Notification) -> str | None:
    """Where a notification leads: the need it is about."""
    need_id = note.data.get("need_id") or (note.data.get("need") or {}).get("id")
    return url_for("needs.show", need_id=need_id) if need_id else None


def _render_index(errors: FormErrors | None = None) -> Any:
    items = services.recent(current_user.id, 100)
    return render_template("notifications.html", items=[(n, n.text, link(n)) for n in items],
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
