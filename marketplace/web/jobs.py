"""My jobs: a provider's offers by where they stand — pending, accepted, completed (with the
customer's rating) and closed."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace import access
from marketplace.needs.models import NeedStatus
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus
from marketplace.ratings import services as ratings
from marketplace.web.providers import require_provider

bp = Blueprint("jobs", __name__)

JOB_TABS = (("pending", "Pending"), ("accepted", "Accepted"), ("completed", "Completed"),
            ("closed", "Declined/Withdrawn"))
JOBS_SHOWN = 500


def _job_tab(offer: Offer) -> str:
    if offer.status == OfferStatus.PENDING:
        return "pending"
    if offer.status == OfferStatus.ACCEPTED:
        return {NeedStatus.ASSIGNED: "accepted",
                NeedStatus.COMPLETED: "completed"}.get(offer.need.status, "closed")
    return "closed"


@bp.route("/jobs")
@login_required
def index() -> Any:
    provider = require_provider()
    if provider is None:
        return redirect(url_for("providers.setup", next=url_for("jobs.index")))
    rows, _more = offers.mine(current_user, None, None, JOBS_SHOWN)
    grouped: dict[str, list[Offer]] = {key: [] for key, _label in JOB_TABS}
    for offer in rows:
        grouped[_job_tab(offer)].append(offer)
    tab = request.args.get("tab", "")
    if tab not in grouped:
        tab = next((key for key in ("accepted", "pending", "completed", "closed")
                    if grouped[key]), "pending")
    items = [(offer, access.offerer_view(provider, offer.need, offer.id))
             for offer in grouped[tab]]
    rated = ratings.of_needs([o.need_id for o, _v in items]) if tab == "completed" else {}
    return render_template("providers/jobs.html", tabs=JOB_TABS, tab=tab, grouped=grouped,
                           items=items, rated=rated, provider=provider)
