"""What people nearby want: the trends page (``signals.services.trends``, the same answer as
``GET /api/v1/trends``) drawn as server-rendered SVG bars; ``static/trends.js`` re-fetches the
page and swaps the chart when the answer changes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request
from flask_login import current_user, login_required

from marketplace.errors import DomainError
from marketplace.extensions import limited
from marketplace.geo import grid_cell_centre
from marketplace.geocoding import services as geocoding
from marketplace.needs import services as needs
from marketplace.needs.schemas import SuggestionArgs, SuggestionsSchema
from marketplace.providers import services as providers
from marketplace.providers.models import MAX_RADIUS_KM, MIN_RADIUS_KM
from marketplace.signals import services as signals
from marketplace.signals.parser import INTENT, SIGIL_OF, TOPIC, normalise
from marketplace.signals.schemas import TrendsArgs
from marketplace.web import forms
from marketplace.web.forms import FormInvalid
from marketplace.web.radius import radius

bp = Blueprint("trends", __name__)

CHART = {"width": 360, "row": 28, "label_w": 120, "bar_max": 170}
# The radius picker's choices in the reader's unit, and the one it starts on.
RADII = {"km": (5, 10, 25, 50), "mi": (3, 5, 15, 30)}
DEFAULT_RADIUS = {"km": 10, "mi": 5}


def chart(items: list[dict[str, Any]], kind: str, focus: tuple[str, str] | None) -> dict[str, Any]:
    """Geometry of one kind's bars (widths relative to the top count)."""
    top = max((i["count"] for i in items), default=1) or 1
    bars = [{**item, "spelled": SIGIL_OF[kind] + item["tag"], "y": n * CHART["row"],
             "width": max(2.0, round(CHART["bar_max"] * item["count"] / top, 1)),
             "focus": focus == (kind, item["tag"])}
            for n, item in enumerate(items)]
    return {**CHART, "bars": bars, "height": max(1, len(bars)) * CHART["row"]}


def _viewer_place() -> tuple[float, float] | None:
    """Near the viewer: their provider base's cell, else the cell of their newest need."""
    provider = providers.provider_of(current_user)
    if provider is not None:
        return tuple(grid_cell_centre(provider.base_lat, provider.base_lon))  # type: ignore[return-value]
    mine, _cursor = needs.list_mine(current_user, None, None, 1)
    if mine:
        return tuple(grid_cell_centre(mine[0].lat, mine[0].lon))  # type: ignore[return-value]
    return None


@bp.route("/trends")
@login_required
@limited("RATE_LIMIT_TRENDS")
def index() -> Any:
    args = request.args
    errors: dict[str, list[str]] = {}
    place = args.get("place", "").strip()
    point: tuple[float, float] | None = None
    if place:
        try:
            found = geocoding.search(place, 1, field="place")[0]
            point = (found.lat, found.lon)
        except (DomainError, FormInvalid) as exc:
            errors["place"] = [getattr(exc, "message", None) or "No such place."]
    elif args.get("lat") and args.get("lon"):
        point = (args.get("lat"), args.get("lon"))  # type: ignore[assignment]
    else:
        point = _viewer_place()
    kind = INTENT if args.get("kind") != TOPIC else TOPIC
    focus = (kind, normalise(args["tag"])) if args.get("tag") else None
    answer = None
    query: dict[str, Any] = {}
    box = radius(MIN_RADIUS_KM, MAX_RADIUS_KM, args)
    chosen = args.get(box.name) or str(DEFAULT_RADIUS[box.unit])
    radius_km, refused = box.read({box.name: chosen}, box.range_words())
    if refused:
        errors[box.name] = refused
    if point is not None and not errors:
        try:
            query = forms.load(TrendsArgs(), {"lat": point[0], "lon": point[1],
                                              "radius_km": radius_km,
                                              "window": args.get("window") or "24h"},
                               aliases={"radius_km": box.name})
        except FormInvalid as exc:
            errors = exc.errors
        else:
            answer = signals.trends(query["lat"], query["lon"], query["radius_km"],
                                    query["window"])
    charts = {}
    shown = set()
    if answer is not None:
        charts = {"intents": chart(answer["intents"], INTENT, focus),
                  "topics": chart(answer["topics"], TOPIC, focus)}
        shown = {(INTENT, i["tag"]) for i in answer["intents"]} | {
            (TOPIC, i["tag"]) for i in answer["topics"]}
    return render_template("signals/trends.html", answer=answer, charts=charts, errors=errors,
                           query=query, radius=box, radii=RADII[box.unit],
                           chosen_radius=chosen, focus=focus,
                           focus_shown=focus in shown, sigil=SIGIL_OF,
                           place=place)


@bp.route("/needs/suggestions")
@login_required
@limited("RATE_LIMIT_REACH_PREVIEWS")
def suggestions() -> Any:
    """Tags (and a category) to offer while a customer types a need, from what is used nearby
    (``needs.suggestions``, the answer of ``GET /api/v1/needs/suggestions``); asked by
    static/suggest.js as they type, so input it cannot use (no place yet, a place unknown)
    gets no suggestions rather than an error."""
    try:
        answer = needs.suggestions(forms.load(SuggestionArgs(), request.args))
    except (FormInvalid, DomainError):
        return jsonify({"tags": [], "category": None})
    return jsonify(SuggestionsSchema().dump(answer))
