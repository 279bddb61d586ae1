"""The customer's pages — post a need (with its reach preview), my needs, sharing — and the need
page, which every party of a need sees in their own way. The forms on the need page that
belong to offers, messages and ratings live in those modules and re-render this page with
their errors (``act``). Thin: parse the form with the API's schemas, call a service,
redirect — or re-render with errors next to their fields.

A form re-rendered with its errors is a page that loaded fine (200): browsers log every 4xx
document as a console error, and the JSON API is where status codes carry the meaning."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from marketplace import access, lifecycle
from marketplace.contacts import services as contacts
from marketplace.db_types import utcnow
from marketplace.errors import DomainError
from marketplace.extensions import limited
from marketplace.geo import grid_cell_centre
from marketplace.geocoding import services as geocoding
from marketplace.messages import services as messages
from marketplace.money import CURRENCIES, currencies_in_order, currency_of_locale, parse_amount
from marketplace.needs import services
from marketplace.needs.models import NeedStatus
from marketplace.needs.presenters import NeedView, summary
from marketplace.needs.schemas import CancelSchema, NeedInSchema, NeedPatchSchema
from marketplace.offers.presenters import ordered, present
from marketplace.offers.schemas import DEFAULT_SORT, SORTS
from marketplace.providers import services as providers
from marketplace.providers.models import MAX_RADIUS_KM, MIN_RADIUS_KM
from marketplace.ratings import services as ratings
from marketplace.web import confirm, forms
from marketplace.web.filters import amount_input, wall_time, when_text
from marketplace.web.forms import FormErrors, FormInvalid, flatten, local_datetime, safe_next
from marketplace.web.i18n import viewer_locale
from marketplace.web.radius import Radius, radius

bp = Blueprint("needs", __name__)

MY_NEEDS_SHOWN = 200
DEFAULT_RADIUS = {"km": "15", "mi": "10"}  # what the post form starts with, in its unit
EXPIRY_CHOICES = [(24, "1 day"), (48, "2 days"), (72, "3 days"), (168, "1 week"), (336, "2 weeks")]
NEED_ALIASES = {"budget.amount": "budget", "budget.currency": "currency",
                "location.lat": "lat", "location.lon": "lon", "location.query": "place_query",
                "location": "place_query", "expires_at": "expires_in"}


def _need_form(form: Any, box: Radius) -> dict[str, Any]:
    """Form fields -> the API's NeedIn payload, loaded with its schema (or ``FormInvalid``)."""
    refused: FormErrors = {}
    radius_km, radius_refused = box.read(form, "Say how far a provider may come, in miles.")
    if radius_refused:
        refused["radius_km"] = radius_refused
    currency = form.get("currency") or default_currency()
    data: dict[str, Any] = {
        "title": form.get("title", ""),
        "description": form.get("description", ""),
        "category": form.get("category", ""),
        "radius_km": radius_km,
        "address": form.get("address") or None,
        "max_offers": form.get("max_offers", ""),
        "audience": form.get("audience") or "nearby",
    }
    if not data["category"]:
        refused["category"] = ["Choose a category."]
    try:
        data["budget"] = {"amount": parse_amount(form.get("budget", ""), currency,
                                                 viewer_locale()),
                          "currency": currency}
    except ValueError as exc:
        refused["budget"] = [str(exc)]
    lat, lon, query = form.get("lat", "").strip(), form.get("lon", "").strip(), \
        form.get("place_query", "").strip()
    if lat or lon:
        data["location"] = {"lat": lat, "lon": lon}
        if not (lat and lon):
            refused["location"] = ["Enter both latitude and longitude."]
    elif query:
        data["location"] = {"query": query}
    else:
        refused["location"] = ["Use your location, type a place, or enter coordinates."]
    try:
        needed_by = local_datetime(form.get("needed_by"), form.get("tz"))
    except ValueError as exc:
        refused["needed_by"] = [str(exc)]
    else:
        data["needed_by"] = needed_by.isoformat() if needed_by else None
    hours = form.get("expires_in", "48")
    if hours not in {str(h) for h, _ in EXPIRY_CHOICES}:
        refused["expires_at"] = ["Choose how long the need stays open."]
    else:
        data["expires_at"] = (utcnow() + timedelta(hours=int(hours))).isoformat()
    return forms.load(NeedInSchema(), data, aliases={**_need_aliases(lat, lon), "radius_km": box.name},
                      refused=refused)


def default_currency() -> str:
    """The currency of the customer's last need, else their locale's (de_DE: EUR), else USD."""
    last, _more = services.list_mine(current_user, None, None, 1)
    if last and last[0].budget_currency in CURRENCIES:
        return last[0].budget_currency
    return currency_of_locale(viewer_locale())


def _need_aliases(lat: str, lon: str) -> dict[str, str]:
    """A location error belongs to the coordinate left empty when coordinates were typed."""
    if lat and not lon:
        return {**NEED_ALIASES, "location": "lon"}
    if lon and not lat:
        return {**NEED_ALIASES, "location": "lat"}
    return NEED_ALIASES


@bp.route("/needs/new", methods=["GET", "POST"])
@login_required
@limited("RATE_LIMIT_NEEDS", methods=["POST"])
def new() -> Any:
    errors: FormErrors = {}
    form: Any = request.form
    box = radius(MIN_RADIUS_KM, MAX_RADIUS_KM, request.form if request.method == "POST" else None)
    if request.method == "POST":
        try:
            need = services.create(current_user, _need_form(request.form, box))
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            errors = flatten(exc.fields or {"_form": [exc.message]},
                             {**NEED_ALIASES, "radius_km": box.name})
            form = _kept_as_address(form, errors)
        else:
            flash("Your need is live. Your favourite providers have been told."
                  if need.audience == "favourites" else
                  "Your need is live. Providers nearby have been told.")
            return redirect(url_for("needs.show", need_id=need.id))
    chosen = request.form.get("currency") or default_currency()
    common, others = currencies_in_order(chosen)
    return render_template(
        "needs/new.html", form=form, errors=errors,
        categories=providers.all_categories(), currencies=common, chosen_currency=chosen,
        all_currencies=others, expiry_choices=EXPIRY_CHOICES,
        has_favourites=contacts.has_favourites(current_user),
        radius=box, radius_default=DEFAULT_RADIUS[box.unit],
    )


# A house number then words: "1100 Congress Ave, Austin" (a ZIP code alone is a place).
STREET_ADDRESS = re.compile(r"\s*\d+[A-Za-z]?(?:-\d+)?\s+\w.*", re.S)


def _kept_as_address(form: Any, errors: FormErrors) -> Any:
    """A street address typed in the place box that no geocoder could place (the offline
    gazetteer knows towns and ZIP codes, not streets) is kept as the need's private address,
    and the person is told how to give the place."""
    query = form.get("place_query", "").strip()
    if "place_query" not in errors or not STREET_ADDRESS.fullmatch(query) \
            or form.get("address", "").strip():
        return form
    kept = form.copy()
    kept["address"], kept["place_query"] = query, ""
    errors["place_query"] = [
        f"We could not find \u201c{query}\u201d on the map, so it is kept below as your private "
        "address. Now say roughly where it is: tap the map, use your location, or type a "
        "town or ZIP code."]
    return kept


def _edit_form(form: Any, currency: str) -> dict[str, Any]:
    """The edit form -> the API's NeedPatch payload: what the form sends, in the need's
    currency; a date left as it was shown is not sent (it may have passed meanwhile)."""
    refused: FormErrors = {}
    data: dict[str, Any] = {key: form[key] for key in ("title", "description") if key in form}
    if "budget" in form:
        try:
            data["budget"] = {"amount": parse_amount(form["budget"], currency, viewer_locale()),
                              "currency": currency}
        except ValueError as exc:
            refused["budget"] = [str(exc)]
    if "needed_by" in form and form["needed_by"] != form.get("needed_by_was"):
        try:
            needed_by = local_datetime(form["needed_by"], form.get("tz"))
        except ValueError as exc:
            refused["needed_by"] = [str(exc)]
        else:
            data["needed_by"] = needed_by.isoformat() if needed_by else None
    hours = form.get("expires_in", "")
    if hours and hours not in {str(h) for h, _ in EXPIRY_CHOICES}:
        refused["expires_at"] = ["Choose how long the need stays open."]
    elif hours:
        data["expires_at"] = (utcnow() + timedelta(hours=int(hours))).isoformat()
    return forms.load(NeedPatchSchema(), data, aliases=NEED_ALIASES, refused=refused)


@bp.route("/needs/<int:need_id>/edit", methods=["GET", "POST"])
@login_required
@limited("RATE_LIMIT_NEEDS", methods=["POST"])
def edit(need_id: int) -> Any:
    """The post form again, for the customer's open need: its text, budget and dates."""
    need, role = access.need_with_role(current_user, need_id)
    if role != "customer":
        abort(404)
    errors: FormErrors = {}
    if need.status != NeedStatus.OPEN:
        errors = {"_form": [f"This need is {need.status.value}; you can only edit a need "
                            "that is open."]}
    elif request.method == "POST":
        try:
            lifecycle.edit(current_user, need_id, _edit_form(request.form, need.budget_currency))
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            if exc.status == 404:
                abort(404)
            errors = flatten(exc.fields or {"_form": [exc.message]}, NEED_ALIASES)
        else:
            flash("Your need is updated. Providers who offered have been told.")
            return redirect(url_for("needs.show", need_id=need_id))
    shown = request.form if request.method == "POST" else {
        "title": need.title, "description": need.description,
        "budget": amount_input({"amount": need.budget_amount, "currency": need.budget_currency}),
        "needed_by": wall_time(need.needed_by)}
    return render_template(
        "needs/new.html", form=shown, errors=errors, editing=need,
        needed_by_was=request.form.get("needed_by_was", wall_time(need.needed_by)),
        chosen_currency=need.budget_currency, expiry_choices=EXPIRY_CHOICES)


@bp.route("/needs/reach")
@login_required
@limited("RATE_LIMIT_REACH_PREVIEWS")
def reach() -> Any:
    """How many providers a need would reach, before posting (for the form's preview)."""
    args = request.args
    found = None  # a town's or ZIP code's centre, for the form's map to look at
    try:
        if args.get("place_query") and not args.get("lat"):
            place = geocoding.resolve(args["place_query"])
            lat, lon, label = place.lat, place.lon, place.label
            found = {"lat": lat, "lon": lon}
        else:
            lat, lon, label = float(args.get("lat", "")), float(args.get("lon", "")), None
        if not args.get("category"):
            return jsonify({"count": None, "found": found, "message":
                            "Choose a category to see how many providers are in reach."})
        category = providers.category_by_slug(args["category"])
        box = radius(MIN_RADIUS_KM, MAX_RADIUS_KM, args)
        typed = float(args.get(box.name, ""))
        if not (box.low <= typed <= box.high and -90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError("out of range")
    except (ValueError, DomainError) as exc:
        message = exc.message if isinstance(exc, DomainError) else "Incomplete location or radius."
        return jsonify({"count": None, "message": message, "found": found})
    count = len(services.reach(category.id, lat, lon, box.to_km(typed), current_user.id))
    return jsonify({"count": count, "place": label, "found": found})


@bp.route("/needs")
@login_required
def mine() -> Any:
    status = request.args.get("status") or None
    if status not in {None, *(s.value for s in NeedStatus)}:
        status = None
    items, _more = services.list_mine(current_user, status, None, MY_NEEDS_SHOWN)
    return render_template("needs/mine.html", needs=items, status=status,
                           statuses=[s.value for s in NeedStatus])


def _render_show(need_id: int, errors: FormErrors | None = None,
                 form_name: str | None = None) -> Any:
    need, role = access.need_with_role(current_user, need_id)
    sort = request.args.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        sort = DEFAULT_SORT
    offer_rows = access.visible_offers(current_user, need, role)
    views = ordered(present(offer_rows, for_customer=role == "customer"), sort)
    rating = ratings.of_needs([need.id]).get(need.id)
    can_offer = role == "matched_provider" and need.status == NeedStatus.OPEN
    return render_template(
        "needs/show.html", need=access.need_view(current_user, need, role), role=role,
        offers=views, sort=sort, sorts=SORTS,
        threads=messages.threads_of([v.id for v in views], current_user.id),
        rating=rating, can_offer=can_offer, errors=errors or {}, form_name=form_name,
        form=request.form, share_url=url_for("needs.shared", token=need.share_token,
                                             _external=True),
    )


@bp.route("/needs/<int:need_id>")
@login_required
@limited("RATE_LIMIT_LOCATION_READS")
def show(need_id: int) -> Any:
    return _render_show(need_id)


def back(need_id: int, anchor: str = "") -> Any:
    return redirect(safe_next(url_for("needs.show", need_id=need_id)) + anchor)


def act(need_id: int, form_name: str, action: Any, success: str, anchor: str = "",
         aliases: dict[str, str] | None = None) -> Any:
    """Run a form's load and service call; on a refusal re-render the page with the errors."""
    try:
        action()
    except FormInvalid as exc:
        return _render_show(need_id, exc.errors, form_name)
    except DomainError as exc:
        if exc.status == 404:
            abort(404)
        fields = flatten(exc.fields, aliases) if exc.fields else {"_form": [exc.message]}
        return _render_show(need_id, fields, form_name)
    flash(success)
    return back(need_id, anchor)


@bp.route("/needs/<int:need_id>/cancel", methods=["POST"])
@login_required
def cancel(need_id: int) -> Any:
    if confirm.wanted():
        need, _role = access.need_with_role(current_user, need_id)
        return confirm.ask("cancel", url_for("needs.show", need_id=need_id), title=need.title,
                           assigned=need.status == NeedStatus.ASSIGNED, offers=need.offer_count)

    def run() -> None:
        data = forms.load(CancelSchema(), {"reason": request.form.get("reason", "")})
        lifecycle.cancel(current_user, need_id, data["reason"])

    return act(need_id, "cancel", run, "The need is cancelled.")


@bp.route("/needs/<int:need_id>/complete", methods=["POST"])
@login_required
def complete(need_id: int) -> Any:
    if confirm.wanted():
        need, _role = access.need_with_role(current_user, need_id)
        return confirm.ask("complete", url_for("needs.show", need_id=need_id), title=need.title,
                           early=bool(need.needed_by and need.needed_by > utcnow()),
                           needed_by=when_text(need.needed_by))
    return act(need_id, "complete", lambda: lifecycle.complete(current_user, need_id),
                "Marked as completed. How did it go? Rate the provider below.", "#rate")


@bp.route("/s/<token>")
def shared(token: str) -> Any:
    """The public share page: what, roughly where, for how much — never who or exactly where."""
    need = services.by_share_token(token)
    cell = grid_cell_centre(need.lat, need.lon)
    role = access.viewer_role(current_user if current_user.is_authenticated else None, need)
    # Published to anyone with the link: contact details in the text are masked even for the
    # customer, who sees on this page what the people they share it with will see.
    return render_template("needs/shared.html", need=summary(need), cell=cell,
                           description=NeedView(need, None).description, role=role,
                           open=need.status == NeedStatus.OPEN)
