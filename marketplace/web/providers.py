"""A provider's set-up page and public profile (with their reputation). The feed and my jobs are
``feed`` and ``jobs``; offers are made on the need page (``offers``). Thin: parse the form
with the API's schema, call a service, redirect — or re-render with every error next to its
field.

Like every HTML form in the app, a form re-rendered with its errors answers 200: browsers log
each 4xx document as a console error, and the JSON API is where status codes carry meaning."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from marketplace.errors import DomainError
from marketplace.extensions import db, limited
from marketplace.geo import grid_cell_centre
from marketplace.geocoding import services as geocoding
from marketplace.money import major_text
from marketplace.offers import reputation
from marketplace.providers import services
from marketplace.providers.models import MAX_RADIUS_KM, MIN_RADIUS_KM, Provider
from marketplace.providers.schemas import ProviderInSchema
from marketplace.ratings import services as ratings
from marketplace.ratings.models import SUB_SCORES
from marketplace.ratings.schemas import RatingOutSchema
from marketplace.schemas import LocationInSchema
from marketplace.web import forms
from marketplace.web.forms import FormErrors, FormInvalid, safe_next
from marketplace.web.radius import KM_PER_MILE, Radius, radius

bp = Blueprint("providers", __name__)

PROVIDER_ALIASES = {"base.lat": "lat", "base.lon": "lon", "base": "place_query"}
DEFAULT_RADIUS_KM = 25
DEFAULT_RADIUS_MI = 15
RATINGS_PER_PAGE = 20
_RATINGS_OUT = RatingOutSchema(many=True)  # made once, not per profile page


def major(money: dict[str, Any]) -> str:
    """An amount as a form input shows it ("1200.50")."""
    return major_text(money["amount"], money["currency"])


# --- set-up ---------------------------------------------------------------------------------


def _provider_form(form: MultiDict[str, str], box: Radius,
                   was_km: float | None) -> tuple[dict[str, Any], str | None]:
    """Form fields -> the loaded ProviderIn payload (or ``FormInvalid``), and the label of a
    place name the geocoder resolved (when the base came from one). ``was_km``: the saved
    radius, kept when its box is left as it showed it."""
    refused: FormErrors = {}
    place_label = None
    radius_km, radius_refused = box.read(form, f"Say how far you travel, {box.low}-{box.high} "
                                               f"{box.words}.", was_km)
    data: dict[str, Any] = {
        "handle": form.get("handle", "").strip().lower(),  # as the hint says: lower case
        "display_name": form.get("display_name", ""),
        "bio": form.get("bio", ""),
        "categories": [c for c in form.getlist("categories") if c],
        "radius_km": radius_km,
        "active": form.get("active") == "1",
        "tags": form.get("tags", "").split(),  # "?kayak #boats", space-separated
        "direct_asks": form.get("direct_asks") == "1",
    }
    if not data["categories"]:
        refused["categories"] = ["Choose at least one category."]
    if radius_refused:
        refused["radius_km"] = radius_refused
    elif data["radius_km"] == "":
        refused["radius_km"] = [f"Say how far you travel, {MIN_RADIUS_KM}-{MAX_RADIUS_KM} km."]
    query = form.get("place_query", "").strip()
    lat, lon = form.get("lat", "").strip(), form.get("lon", "").strip()
    aliases = PROVIDER_ALIASES
    if query:  # a typed place name wins over coordinates left in the form
        try:
            place = geocoding.search(_place_query(query), 1, field="place_query")[0]
        except FormInvalid as exc:
            refused["base"] = exc.errors["place_query"]
        except DomainError as exc:
            refused["base"] = forms.flatten(exc.fields).get("place_query", [exc.message]) \
                if exc.fields else [exc.message]
        else:
            data["base"] = {"lat": place.lat, "lon": place.lon}
            place_label = place.label
    elif lat or lon:
        data["base"] = {"lat": lat, "lon": lon}
        if not (lat and lon):
            refused["base"] = ["Enter both latitude and longitude."]
            aliases = {**PROVIDER_ALIASES, "base": "lon" if lat else "lat"}
    else:
        refused["base"] = ["Use your location, type a place, or enter coordinates."]
    aliases = {**aliases, "radius_km": box.name}
    return forms.load(ProviderInSchema(), data, aliases=aliases, refused=refused), place_label


def _place_query(query: str) -> str:
    """A typed place name, judged as the API judges a ``location.query``."""
    return forms.load(LocationInSchema(), {"query": query},
                      aliases={"query": "place_query"})["query"]


def _setup_values(provider: Provider | None, box: Radius) -> dict[str, Any]:
    """What the set-up form shows before anything is posted."""
    wanted = request.args.get("category", "")
    if provider is None:
        return {"handle": "", "display_name": current_user.name, "bio": "",
                "categories": [wanted] if wanted else [], "place_query": "", "lat": "",
                "lon": "", "radius": box.shown(DEFAULT_RADIUS_KM if box.unit == "km"
                                                   else DEFAULT_RADIUS_MI * KM_PER_MILE),
                "active": True, "tags": "",
                "direct_asks": True}
    slugs = [c.slug for c in provider.categories]
    if wanted and wanted not in slugs:
        slugs.append(wanted)
    return {"handle": provider.handle, "display_name": provider.display_name,
            "bio": provider.bio, "categories": slugs, "place_query": "",
            "lat": f"{provider.base_lat:g}", "lon": f"{provider.base_lon:g}",
            "radius": box.shown(provider.radius_km), "active": provider.active,
            "tags": " ".join(provider.subscriptions),
            "direct_asks": provider.direct_asks}


@bp.route("/provider", methods=["GET", "POST"])
@login_required
@limited("RATE_LIMIT_PLACE_CHANGES", methods=["POST"])
def setup() -> Any:
    provider = services.provider_of(current_user)
    errors: FormErrors = {}
    box = radius(MIN_RADIUS_KM, MAX_RADIUS_KM, request.form if request.method == "POST" else None)
    if request.method == "POST":
        form = request.form
        try:
            data, place_label = _provider_form(form, box,
                                               provider.radius_km if provider else None)
            saved = services.save_profile(current_user, data)
        except FormInvalid as exc:
            errors = exc.errors
        except DomainError as exc:
            db.session.rollback()  # save_profile may leave a half-made profile behind
            errors = forms.flatten(exc.fields, PROVIDER_ALIASES) if exc.fields \
                else {"_form": [exc.message]}
        else:
            where = f" Your base is {place_label}." if place_label else ""
            flash(("Your provider profile is saved." if provider else
                   "You are set up as a provider. Matching needs appear in your feed.")
                  + where + ("" if saved.active else " You are paused: no new needs reach you."))
            return redirect(safe_next(url_for("feed.index")))
        values: dict[str, Any] = {k: form.get(k, "") for k in
                                  ("handle", "display_name", "bio", "place_query", "lat", "lon",
                                   "tags")}
        values["radius"] = form.get(box.name, "")
        values["categories"] = form.getlist("categories")
        values["active"] = form.get("active") == "1"
        values["direct_asks"] = form.get("direct_asks") == "1"
    else:
        values = _setup_values(provider, box)
    return render_template(
        "providers/setup.html", values=values, errors=errors, provider=provider,
        categories=services.all_categories(), next=request.values.get("next", ""),
        radius=box,
    )


# --- public profile -------------------------------------------------------------------------

CHART = {"width": 320, "row": 28, "bar_x": 44, "bar_max": 220}


def histogram_chart(histogram: dict[str, int]) -> dict[str, Any]:
    """Geometry of the star histogram (5 stars on top), drawn as SVG by the template."""
    counts = [(stars, int(histogram.get(str(stars), 0))) for stars in range(5, 0, -1)]
    top = max(n for _s, n in counts) or 1
    bars = [{"stars": stars, "count": n, "y": i * CHART["row"],
             "width": round(CHART["bar_max"] * n / top, 1)}
            for i, (stars, n) in enumerate(counts)]
    label = "Star ratings: " + ", ".join(
        f"{stars} star{'' if stars == 1 else 's'}: {n}" for stars, n in counts) + "."
    return {**CHART, "bars": bars, "label": label, "height": CHART["row"] * 5}


def require_provider() -> Provider | None:
    """The caller's provider profile; None (with a flash saying what to do) when they have
    none yet."""
    provider = services.provider_of(current_user)
    if provider is None:
        flash("Set up your provider profile first: say what you do and where you work.")
    return provider


def render_profile(handle: str, errors: FormErrors | None = None,
                    reply_for: int | None = None) -> Any:
    provider = services.by_handle(handle)
    record = reputation.for_providers([provider.id])[provider.id]
    like_you = reputation.like_you_on_profile(
        current_user.id if current_user.is_authenticated else None, provider.id)
    rows, next_cursor = ratings.for_provider(provider.id, request.args.get("cursor"),
                                             RATINGS_PER_PAGE)
    is_owner = current_user.is_authenticated and provider.user_id == current_user.id
    return render_template(
        "providers/profile.html", provider=provider, reputation=record, like_you=like_you,
        chart=histogram_chart(record["histogram"]),
        area=grid_cell_centre(provider.base_lat, provider.base_lon),
        ratings=_RATINGS_OUT.dump(rows), next_cursor=next_cursor,
        sub_scores=SUB_SCORES, is_owner=is_owner, errors=errors or {}, reply_for=reply_for,
        form=request.form,
    )


@bp.route("/p/<handle>")
def profile(handle: str) -> Any:
    return render_profile(handle)
