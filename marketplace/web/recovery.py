"""HTML pages for what is done by mail: confirming an address, "Forgot password?", changing
password or address. Each page loads its form with the schema of its API twin."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, logout_user

from marketplace.accounts import services, sessions
from marketplace.accounts.schemas import (
    EmailChangeSchema,
    LinkTokenSchema,
    PasswordChangeSchema,
    ResetConfirmSchema,
    ResetRequestSchema,
)
from marketplace.errors import DomainError
from marketplace.extensions import attempts_limited
from marketplace.web import forms
from marketplace.web.forms import FormErrors, FormInvalid

bp = Blueprint("recovery", __name__)


def _form(*names: str) -> dict[str, str]:
    return {k: request.form.get(k, "") for k in names}


def _token_error(exc: Exception) -> FormErrors:
    if isinstance(exc, FormInvalid):
        return exc.errors
    assert isinstance(exc, DomainError)
    return exc.fields or {"_form": [exc.message]}


@bp.route("/verify/<token>")
def verify(token: str) -> Any:
    """The link mailed at sign-up: following it confirms the address (a mail scanner that
    opens it first confirms it too -- only the address's mailbox gets the link)."""
    try:
        data = forms.load(LinkTokenSchema(), {"token": token})
        services.verify_email(data["token"])
    except (FormInvalid, DomainError) as exc:
        return render_template("auth/link.html", title="Confirm your address",
                               errors=_token_error(exc)), 422
    flash("Your address is confirmed. Thank you!")
    return redirect(url_for("accounts.home") if current_user.is_authenticated
                    else url_for("accounts.login"))


@bp.route("/account/verification", methods=["POST"])
@login_required
def resend_verification() -> Any:
    if services.send_verification(current_user):
        flash(f"A new link is on its way to {current_user.email}; check your mail (in the demo, "
              "the server's output).")
    else:
        flash("Your address is confirmed already.")
    return redirect(url_for("accounts.home"))


@bp.route("/password-reset", methods=["GET", "POST"])
@attempts_limited("RATE_LIMIT_PASSWORD_RESET", methods=["POST"])
def forgot() -> Any:
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            data = forms.load(ResetRequestSchema(), _form("email"))
        except FormInvalid as exc:
            errors = exc.errors
        else:
            services.request_password_reset(data["email"])
            return render_template("auth/check_mail.html", email=data["email"].strip().lower(),
                                   what="reset")
    return render_template("auth/forgot.html", errors=errors, form=request.form)


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
@attempts_limited("RATE_LIMIT_PASSWORD_RESET", methods=["POST"])
def reset(token: str) -> Any:
    """The reset link: a form for the new password; the token is used when it is sent."""
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            data = forms.load(ResetConfirmSchema(), {"token": token, **_form("password")})
            services.reset_password(data["token"], data["password"])
        except (FormInvalid, DomainError) as exc:
            errors = _token_error(exc)
        else:
            if current_user.is_authenticated:  # the reset ended this browser's session too
                logout_user()
            flash("Your new password is set, and you are signed out everywhere. Sign in with it.")
            return redirect(url_for("accounts.login"))
    return render_template("auth/reset.html", errors=errors)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> Any:
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            data = forms.load(PasswordChangeSchema(), _form("current_password", "password"))
            ended = services.change_password(current_user, data["current_password"],
                                             data["password"], keep=sessions.current())
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            errors = exc.fields or {"_form": [exc.message]}
        else:
            flash("Your password is changed." + (
                f" Signed out on {ended} other device{'s' if ended != 1 else ''}." if ended else ""))
            return redirect(url_for("recovery.change_password"))
    return render_template("account/password.html", errors=errors)


@bp.route("/account/email", methods=["GET", "POST"])
@login_required
def change_email() -> Any:
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            data = forms.load(EmailChangeSchema(), _form("email", "password"))
            services.change_email(current_user, data["password"], data["email"])
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            errors = exc.fields or {"_form": [exc.message]}
        else:
            return render_template("auth/check_mail.html", email=data["email"].strip().lower(),
                                   what="change_email")
    return render_template("account/email.html", errors=errors, form=request.form)


@bp.route("/email-change/<token>", methods=["GET", "POST"])
def confirm_email_change(token: str) -> Any:
    """The link mailed to the new address: a button that makes the change (a GET changes
    nothing, so a mail scanner opening the link does not)."""
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            data = forms.load(LinkTokenSchema(), {"token": token})
            user = services.confirm_email_change(data["token"])
        except (FormInvalid, DomainError) as exc:
            errors = _token_error(exc)
        else:
            flash(f"Your account's address is now {user.email}.")
            return redirect(url_for("accounts.home") if current_user.is_authenticated
                            else url_for("accounts.login"))
    return render_template("auth/confirm_email.html", errors=errors)
