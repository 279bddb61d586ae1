"""The alert settings page, and the one-click unsubscribe link mailed in every alert (no
sign-in: the link's signed token says whose alerts to stop)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.alerts import services
from marketplace.alerts.schemas import AlertSettingsSchema
from marketplace.errors import DomainError
from marketplace.extensions import csrf, db
from marketplace.providers import services as providers
from marketplace.web import forms
from marketplace.web.forms import FormErrors, FormInvalid

bp = Blueprint("alerts", __name__)


@bp.route("/alerts", methods=["GET", "POST"])
@login_required
def settings() -> Any:
    errors: FormErrors = {}
    if request.method == "POST":
        values: dict[str, Any] = {"categories": request.form.getlist("categories"),
                                  "direct_asks": request.form.get("direct_asks") == "1",
                                  "tags": request.form.get("tags") == "1"}
        try:
            services.save(current_user, forms.load(AlertSettingsSchema(), values))
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            db.session.rollback()
            errors = forms.flatten(exc.fields) if exc.fields else {"_form": [exc.message]}
        else:
            on = values["categories"] or values["direct_asks"] or values["tags"]
            flash("Alerts saved. We mail you when a need matches while Nearby is closed."
                  if on else "Alerts saved: all off. We will not mail you about needs.")
            return redirect(url_for("alerts.settings"))
    else:
        values = services.settings(current_user)
    return render_template("alerts/settings.html", values=values, errors=errors,
                           provider=providers.provider_of(current_user),
                           categories=providers.all_categories())


@bp.route("/alerts/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058: the mail program POSTs "List-Unsubscribe=One-Click", with no form
def unsubscribe(token: str) -> Any:
    """GET asks (a mail scanner opening the link changes nothing); POST unsubscribes -- from
    the page's button or from the mail program's one-click unsubscribe."""
    try:
        user_id = services.user_of_token(token)
    except DomainError as exc:
        return render_template("alerts/unsubscribe.html", state="bad", message=exc.message,
                               token=token), exc.status
    if request.method == "POST":
        services.unsubscribe(user_id)
        return render_template("alerts/unsubscribe.html", state="done", token=token)
    return render_template("alerts/unsubscribe.html", state="ask", token=token)
