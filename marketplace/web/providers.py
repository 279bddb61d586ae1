"""HTML routes for providers: set-up, the live feed of matching needs, my jobs, and the public
profile with its reputation. Thin: parse the form with the API's schema, call a service,
redirect — or re-render with every error next to its field. Offers themselves are made,
revised and withdrawn through the need page's POST routes (``needs.*``).

Like every HTML form in the app, a form re-rendered with its errors answers 200: browsers log
each 4xx document as a console error, and the JSON API is where status codes carry meaning."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from marketplace import access
from marketplace.errors import DomainError, Invalid
from marketplace.extensions import db
from marketplace.geo import grid_cell_centre
from marketplace.geocoding import services as geocoding
from marketplace.money import major_text
from marketplace.needs.models import NeedStatus
from marketplace.offers import reputation
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus
from marketplace.providers import services
from marketplace.providers.models import MAX_RADIUS_KM, MIN_RADIUS_KM, Provider
from marketplace.providers.schemas import ProviderInSchema
from marketplace.ratings import services as ratings
from marketplace.ratings.models import SUB_SCORES, Rating
from marketplace.ratings.schemas import RatingOutSchema, ReplyInSchema
from marketplace.schemas import LocationInSchema
from marketplace.web import forms
from marketplace.web.forms import FormErrors, FormInvalid, safe_next

bp = Blueprint("providers", __name__)

PROVIDER_ALIASES = {"base.lat": "lat", "base.lon": "lon", "base": "place_query"}
DEFAULT_RADIUS_KM = 25
RATINGS_PER_PAGE = 20
FEED_PAGE = 25  # needs per feed page; the rest are a "More needs" link away
JOB_TABS = (("pending", "Pending"), ("accepted", "Accepted"), ("completed", "Completed"),
            ("closed", "Declined/Withdrawn"))


def _major(money: dict[str, Any]) -> str:
    return major_text(money["amount"], money["currency"])


# --- set-up ---------------------------------------------------------------------------------


def _provider_form(form: MultiDict[str, str]) -> tuple[dict[str, Any], str | None]:
    """Form fields -> the loaded ProviderIn payload (or ``FormInvalid``), and the label of a
    place name the geocoder resolved (when the base came from one)."""
    refused: FormErrors = {}
    place_label = None
    data: dict[str, Any] = {
        "handle": form.get("handle", "").strip().lower(),  # as the hint says: lower case
        "display_name": form.get("display_name", ""),
        "bio": form.get("bio", ""),
        "categories": [c for c in form.getlist("categories") if c],
        "radius_km": form.get("radius_km", "").strip(),
        "active": form.get("active") == "1",
    }
    if not data["categories"]:
        refused["categories"] = ["Choose at least one category."]
    if not data["radius_km"]:
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
    return forms.load(ProviderInSchema(), data, aliases=aliases, refused=refused), place_label


def _place_query(query: str) -> str:
    """A typed place name, judged as the API judges a ``location.query``."""
    return forms.load(LocationInSchema(), {"query": query},
                      aliases={"query": "place_query"})["query"]


def _setup_values(provider: Provider | None) -> dict[str, Any]:
    """What the set-up form shows before anything is posted."""
    wanted = request.args.get("category", "")
    if provider is None:
        return {"handle": "", "display_name": current_user.name, "bio": "",
                "categories": [wanted] if wanted else [], "place_query": "", "lat": "",
                "lon": "", "radius_km": str(DEFAULT_RADIUS_KM), "active": True}
    slugs = [c.slug for c in provider.categories]
    if wanted and wanted not in slugs:
        slugs.append(wanted)
    return {"handle": provider.handle, "display_name": provider.display_name,
            "bio": provider.bio, "categories": slugs, "place_query": "",
            "lat": f"{provider.base_lat:g}", "lon": f"{provider.base_lon:g}",
            "radius_km": f"{provider.radius_km:g}", "active": provider.active}


@bp.route("/provider", methods=["GET", "POST"])
@login_required
def setup() -> Any:
    provider = services.provider_of(current_user)
    errors: FormErrors = {}
    if request.method == "POST":
        form = request.form
        try:
            data, place_label = _provider_form(form)
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
            return redirect(safe_next(url_for("providers.feed")))
        values: dict[str, Any] = {k: form.get(k, "") for k in
                                  ("handle", "display_name", "bio", "place_query", "lat", "lon",
                                   "radius_km")}
        values["categories"] = form.getlist("categories")
        values["active"] = form.get("active") == "1"
    else:
        values = _setup_values(provider)
    return render_template(
        "providers/setup.html", values=values, errors=errors, provider=provider,
        categories=services.all_categories(), next=request.values.get("next", ""),
        min_radius=MIN_RADIUS_KM, max_radius=MAX_RADIUS_KM,
    )


# --- feed -----------------------------------------------------------------------------------


def _require_provider() -> Provider | None:
    provider = services.provider_of(current_user)
    if provider is None:
        flash("Set up your provider profile first: say what you do and where you work.")
    return provider


@bp.route("/feed")
@login_required
def feed() -> Any:
    provider = _require_provider()
    if provider is None:
        return redirect(url_for("providers.setup", next=request.full_path.rstrip("?")))
    announced = request.args.getlist("need", type=int)
    if announced:  # what the page's script fetches for needs announced live (providers.js)
        items, next_cursor = access.feed_items(current_user, announced[:FEED_PAGE]), None
    else:
        try:
            items, next_cursor = access.feed(current_user, request.args.get("cursor"), FEED_PAGE)
        except Invalid:  # a stale or mangled "more" link: start again from the top
            return redirect(url_for("providers.feed"))
    ids = [item.id for item in items]
    mine: dict[int, Offer] = {}
    if ids:
        mine = {o.need_id: o for o in db.session.scalars(
            select(Offer).where(Offer.provider_id == provider.id, Offer.need_id.in_(ids)))}
    return render_template(
        "providers/feed.html", items=items, mine=mine, provider=provider,
        next_cursor=next_cursor, paged=bool(request.args.get("cursor")),
        category_names={c.slug: c.name for c in services.all_categories()},
        acted=request.args.get("acted", type=int), major=_major,
    )


# --- my jobs --------------------------------------------------------------------------------


def _job_tab(offer: Offer) -> str:
    if offer.status == OfferStatus.PENDING:
        return "pending"
    if offer.status == OfferStatus.ACCEPTED:
        return {NeedStatus.ASSIGNED: "accepted",
                NeedStatus.COMPLETED: "completed"}.get(offer.need.status, "closed")
    return "closed"


@bp.route("/jobs")
@login_required
def jobs() -> Any:
    provider = _require_provider()
    if provider is None:
        return redirect(url_for("providers.setup", next=url_for("providers.jobs")))
    rows, _more = offers.mine(current_user, None, None, 500)
    grouped: dict[str, list[Offer]] = {key: [] for key, _label in JOB_TABS}
    for offer in rows:
        grouped[_job_tab(offer)].append(offer)
    tab = request.args.get("tab", "")
    if tab not in grouped:
        tab = next((key for key in ("accepted", "pending", "completed", "closed")
                    if grouped[key]), "pending")
    items = [(offer, access.offerer_view(provider, offer.need, offer.id))
             for offer in grouped[tab]]
    rated: dict[int, Rating] = {}
    if tab == "completed" and items:
        rated = {r.need_id: r for r in db.session.scalars(
            select(Rating).where(Rating.need_id.in_([o.need_id for o, _v in items])))}
    return render_template("providers/jobs.html", tabs=JOB_TABS, tab=tab, grouped=grouped,
                           items=items, rated=rated, provider=provider)


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


def _render_profile(handle: str, errors: FormErrors | None = None,
                    reply_for: int | None = None) -> Any:
    provider = services.by_handle(handle)
    record = reputation.for_providers([provider.id])[provider.id]
    rows, next_cursor = ratings.for_provider(provider.id, request.args.get("cursor"),
                                             RATINGS_PER_PAGE)
    is_owner = current_user.is_authenticated and provider.user_id == current_user.id
    return render_template(
        "providers/profile.html", provider=provider, reputation=record,
        chart=histogram_chart(record["histogram"]),
        area=grid_cell_centre(provider.base_lat, provider.base_lon),
        ratings=RatingOutSchema(many=True).dump(rows), next_cursor=next_cursor,
        sub_scores=SUB_SCORES, is_owner=is_owner, errors=errors or {}, reply_for=reply_for,
        form=request.form,
    )


@bp.route("/p/<handle>")
def profile(handle: str) -> Any:
    return _render_profile(handle)


@bp.route("/p/<handle>/ratings/<int:rating_id>/reply", methods=["POST"])
@login_required
def reply(handle: str, rating_id: int) -> Any:
    provider = services.by_handle(handle)
    rating = db.session.get(Rating, rating_id)
    if rating is None or rating.provider_id != provider.id:
        abort(404)
    try:
        data = forms.load(ReplyInSchema(), {"body": request.form.get("body", "")})
        ratings.reply(current_user, rating_id, data["body"])
    except FormInvalid as exc:
        return _render_profile(handle, exc.errors, rating_id)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise  # not theirs: the error page says so
        return _render_profile(handle, {"_form": [exc.message]}, rating_id)
    flash("Your reply is published.")
    return redirect(url_for("providers.profile", handle=provider.handle) + f"#rating-{rating_id}")
