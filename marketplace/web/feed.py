"""The provider's live feed: open needs posted to them, nearest band first, a page at a time;
the page's script inserts needs announced live (``?need=`` ids) without a reload."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace import access
from marketplace.errors import Invalid
from marketplace.extensions import limited
from marketplace.offers import services as offers
from marketplace.providers import services as providers
from marketplace.web.providers import major, require_provider

bp = Blueprint("feed", __name__)

FEED_PAGE = 25  # needs per feed page; the rest are a "More needs" link away


@bp.route("/feed")
@login_required
@limited("RATE_LIMIT_LOCATION_READS")
def index() -> Any:
    provider = require_provider()
    if provider is None:
        return redirect(url_for("providers.setup", next=request.full_path.rstrip("?")))
    announced = request.args.getlist("need", type=int)
    if announced:  # what the page's script fetches for needs announced live (providers.js)
        items, next_cursor = access.feed_items(current_user, announced[:FEED_PAGE]), None
    else:
        try:
            items, next_cursor = access.feed(current_user, request.args.get("cursor"), FEED_PAGE)
        except Invalid:  # a stale or mangled "more" link: start again from the top
            return redirect(url_for("feed.index"))
    return render_template(
        "providers/feed.html", items=items, provider=provider,
        mine=offers.mine_on(provider, [item.id for item in items]),
        next_cursor=next_cursor, paged=bool(request.args.get("cursor")),
        category_names={c.slug: c.name for c in providers.all_categories()},
        acted=request.args.get("acted", type=int), major=major,
        announced=bool(announced),
    )
