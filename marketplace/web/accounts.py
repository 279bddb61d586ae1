"""HTML routes for signing up, in and out, and managing API tokens."""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user, user_loaded_from_cookie

from marketplace import privacy
from marketplace.accounts import services, sessions
from marketplace.accounts.models import User
from marketplace.accounts.schemas import (
    CredentialsSchema,
    MeUpdateSchema,
    PasswordSchema,
    RegisterSchema,
)
from marketplace.errors import DomainError, error_body
from marketplace.extensions import attempts_limited, forgive, login_manager
from marketplace.web import confirm, forms, i18n
from marketplace.web.forms import FormErrors, FormInvalid, safe_next

bp = Blueprint("accounts", __name__)
login_manager.login_view = "accounts.login"
login_manager.login_message = "Please sign in to continue."


@bp.before_app_request
def _forget_cached_user() -> None:
    """Flask-Login caches the user in ``g``; a request that runs inside an already pushed app
    context (tests, scripts) would otherwise see the previous request's user."""
    g.pop("_login_user", None)
    g.pop("web_session", None)


@login_manager.user_loader
def load_user(key: str) -> User | None:
    """Flask-Login's id is the session's key (accounts.sessions): a cookie whose session was
    ended signs nobody in."""
    return sessions.load(key)


def sign_in(user: User, *, remember: bool) -> None:
    """A new server-side session (a new key: the session id rotates at every sign-in) and a
    cookie session holding nothing from before; a session this browser had ends."""
    previous = sessions.current() if current_user.is_authenticated else None
    if previous is not None:
        sessions.end(previous)
    session.clear()
    # Flask-WTF keeps this request's CSRF token in g; it belonged to the cleared session.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    sessions.start(user, remember=remember, user_agent=request.user_agent.string)
    login_user(user, remember=remember)


@user_loaded_from_cookie.connect
def _rotate_remember_cookie(app: Any, user: User) -> None:
    """A remember-me cookie was used: it is replaced by a new one (Flask-Login sets it when
    ``_remember`` is "set"), and the used one is revoked."""
    key = sessions.rotate(user)
    if key is None:
        return
    session["_user_id"] = key
    session["_remember"] = "set"


@bp.route("/")
def home() -> Any:
    return render_template("home.html")


@bp.route("/signup", methods=["GET", "POST"])
@attempts_limited("RATE_LIMIT_SIGNUP", methods=["POST"])
def signup() -> Any:
    errors: FormErrors = {}
    form = request.form
    if request.method == "POST":
        try:
            data = forms.load(RegisterSchema(),
                              {k: form.get(k, "") for k in ("email", "password", "name")})
            services.sign_up(data["email"], data["password"], data["name"])
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            errors = exc.fields or {"email": [exc.message]}
        else:
            # The same page whether or not the address had an account (nobody is signed in:
            # that would tell), so sign-up tells nobody who has one.
            return render_template("auth/check_mail.html", email=data["email"].strip().lower(),
                                   what="signup")
    return render_template("auth/signup.html", errors=errors, form=form)


@bp.route("/signin", methods=["GET", "POST"])
@attempts_limited("RATE_LIMIT_SIGNIN", methods=["POST"])
def login() -> Any:
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            data = forms.load(CredentialsSchema(only=("email", "password")),
                              {k: request.form.get(k, "") for k in ("email", "password")})
            user = services.authenticate(data["email"], data["password"])
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            errors = {"_form": [exc.message]}
        else:
            forgive("RATE_LIMIT_SIGNIN")  # the right password is not a guess: failures count
            sign_in(user, remember=bool(request.form.get("remember")))
            i18n.remember(user, request.form.get("tz"), request.form.get("locale"))
            return redirect(safe_next(url_for("accounts.home")))
    return render_template("auth/signin.html", errors=errors, form=request.form)


@bp.route("/account/viewer", methods=["POST"])
@login_required
def viewer() -> Any:
    """The browser reports its time zone and language (app.js, when a page was rendered for
    another zone): kept on the account, so the next pages are rendered in them."""
    zone, locale = request.form.get("tz", ""), request.form.get("locale", "")
    errors = {}
    if zone and not i18n.valid_zone(zone):
        errors["tz"] = ["Not an IANA time zone name, like America/Chicago."]
    if locale and not i18n.valid_locale(locale):
        errors["locale"] = ["Not a language tag, like en-US."]
    if errors:
        return jsonify(error_body(422, "Invalid input: " + ", ".join(errors) + ".", errors)), 422
    changed = i18n.remember(current_user, zone, locale)
    return jsonify({"time_zone": current_user.time_zone, "locale": current_user.locale,
                    "changed": changed})


@bp.route("/signout", methods=["POST"])
def logout() -> Any:
    """Ends this session on the server (a replayed cookie signs nobody in) and its live
    connections; the cookies go too."""
    current = sessions.current() if current_user.is_authenticated else None
    if current is not None:
        sessions.end(current)
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("accounts.home"))


@bp.route("/account/preferences", methods=["GET", "POST"])
@login_required
def preferences() -> Any:
    """How the account's pages write distances (its API twin: ``PATCH /api/v1/me``)."""
    errors: FormErrors = {}
    if request.method == "POST":
        unit = request.form.get("distance_unit", "")
        try:
            data = forms.load(MeUpdateSchema(only=("distance_unit",)),
                              {"distance_unit": unit or None})
        except FormInvalid as exc:
            errors = exc.errors
        else:
            services.update_profile(current_user, data)
            flash("Saved. Distances are now written in "
                  f"{UNIT_NAMES[i18n.viewer_distance_unit()]}.")
            return redirect(url_for("accounts.preferences"))
    return render_template("account/preferences.html", errors=errors,
                           chosen=request.form.get("distance_unit", current_user.distance_unit
                                                   or ""),
                           from_locale=UNIT_NAMES[i18n.unit_of_locale(i18n.viewer_locale())])


UNIT_NAMES = {"mi": "miles", "km": "kilometres"}


@bp.route("/account/tokens", methods=["GET", "POST"])
@login_required
def tokens() -> Any:
    new_token = None
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            data = forms.load(CredentialsSchema(only=("name",)),
                              {"name": request.form.get("name", "")})
            _token, new_token = services.create_token(current_user, data["name"])
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            errors = {"name": [exc.message]}
    return render_template("account/tokens.html", tokens=services.list_tokens(current_user),
                           new_token=new_token, errors=errors)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int) -> Any:
    if confirm.wanted():
        token = next((t for t in services.list_tokens(current_user) if t.id == token_id), None)
        if token is not None:
            return confirm.ask("revoke", url_for("accounts.tokens"), name=token.name)
    try:
        services.revoke_token(current_user, token_id)
    except DomainError as exc:
        flash(exc.message)
    else:
        flash("Token revoked.")
    return redirect(url_for("accounts.tokens"))


@bp.route("/account/sessions")
@login_required
def web_sessions() -> Any:
    """Where you are signed in: each session's device and when it was last used."""
    return render_template("account/sessions.html", sessions=sessions.active(current_user),
                           current=sessions.current())


@bp.route("/account/sessions/<int:session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: int) -> Any:
    current = sessions.current()
    if not sessions.end_one(current_user, session_id):
        flash("That session has ended already.")
    elif current is not None and current.id == session_id:
        logout_user()
        flash("You are signed out.")
        return redirect(url_for("accounts.home"))
    else:
        flash("Signed out on that device.")
    return redirect(url_for("accounts.web_sessions"))


@bp.route("/account/sessions/end-all", methods=["POST"])
@login_required
def end_all_sessions() -> Any:
    """Sign out everywhere, this browser included; every live connection of them is cut."""
    if confirm.wanted():
        return confirm.ask("end_all", url_for("accounts.web_sessions"))
    sessions.end_all(current_user)
    logout_user()
    flash("You are signed out everywhere.")
    return redirect(url_for("accounts.home"))


@bp.route("/account/export")
@login_required
def export() -> Any:
    """The same document as GET /api/v1/me/export, as a file to keep."""
    body = json.dumps(privacy.export(current_user), indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": "attachment; filename=nearby-export.json"})


@bp.route("/account/delete", methods=["GET", "POST"])
@login_required
def delete() -> Any:
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            data = forms.load(PasswordSchema(), {"password": request.form.get("password", "")})
            privacy.erase(current_user, data["password"])
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            errors = exc.fields or {"password": [exc.message]}
        else:
            logout_user()
            flash("Your account is deleted.")
            return redirect(url_for("accounts.home"))
    return render_template("account/delete.html", errors=errors)
