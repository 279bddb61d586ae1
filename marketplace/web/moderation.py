"""Reporting (the "Report" links lead to one form) and the admin queue (404 for anyone but
admins). Forms are loaded with the API twins' schemas (``POST /api/v1/reports``,
``POST /api/v1/admin/actions``, ``.../dismiss``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.errors import DomainError
from marketplace.extensions import limited
from marketplace.moderation import services
from marketplace.moderation.models import Reason
from marketplace.moderation.schemas import ActionInSchema, DismissInSchema, ReportInSchema
from marketplace.web import forms
from marketplace.web.forms import FormErrors, FormInvalid, flatten

bp = Blueprint("moderation", __name__)

REASONS = [(r.value, r.value.replace("-", " ").capitalize()) for r in Reason]


def _report_page(errors: FormErrors | None = None) -> Any:
    source = request.form if request.method == "POST" else request.args
    return render_template("moderation/report.html", reasons=REASONS, form=source,
                           errors=errors or {})


@bp.route("/report", methods=["GET", "POST"])
@login_required
@limited("RATE_LIMIT_REPORTS", methods=["POST"])
def report() -> Any:
    if request.method == "GET":
        return _report_page()
    form = request.form
    try:
        data = forms.load(ReportInSchema(), {
            "target_type": form.get("target_type", ""), "target_id": form.get("target_id", ""),
            "handle": form.get("handle", ""), "reason": form.get("reason", ""),
            "details": form.get("details", "")})
        services.report(current_user, data)
    except FormInvalid as exc:
        return _report_page(exc.errors)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _report_page(flatten(exc.fields or {"_form": [exc.message]}))
    flash("Thank you: your report was sent to the moderators.")
    return redirect(url_for("moderation.report_sent"))


@bp.route("/report/sent")
@login_required
def report_sent() -> Any:
    return render_template("moderation/sent.html", reports=services.mine(current_user))


def _admin() -> Any:
    if not getattr(current_user, "is_admin", False):
        abort(404)
    return current_user


def _queue(errors: FormErrors | None = None) -> Any:
    admin = _admin()
    return render_template("moderation/queue.html", reports=services.queue(admin),
                           log=services.log(admin), errors=errors or {}, form=request.form)


@bp.route("/admin/reports")
@login_required
def queue() -> Any:
    return _queue()


@bp.route("/admin/actions", methods=["POST"])
@login_required
def act() -> Any:
    admin = _admin()
    form = request.form
    try:
        data = forms.load(ActionInSchema(), {
            "action": form.get("action", ""), "target_type": form.get("target_type", ""),
            "target_id": form.get("target_id", ""), "reason": form.get("reason", ""),
            "report_id": form.get("report_id", "")})
        done = services.act(admin, data)
    except FormInvalid as exc:
        return _queue(exc.errors)
    except DomainError as exc:
        return _queue(flatten(exc.fields or {"_form": [exc.message]}))
    entry = done["log"]
    flash(f"Done: {entry.action.value} {entry.target_type.value} {entry.target_id}.")
    return redirect(url_for("moderation.queue"))


@bp.route("/admin/reports/<int:report_id>/dismiss", methods=["POST"])
@login_required
def dismiss(report_id: int) -> Any:
    admin = _admin()
    try:
        data = forms.load(DismissInSchema(), {"reason": request.form.get("reason", "")})
        services.dismiss(admin, report_id, data["reason"])
    except FormInvalid as exc:
        return _queue(exc.errors)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _queue(flatten(exc.fields or {"_form": [exc.message]}))
    flash(f"Report {report_id} dismissed.")
    return redirect(url_for("moderation.queue"))
