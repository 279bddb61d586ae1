"""Rating a finished job (a form on the need page) and the provider's public reply (a form on
their profile)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from marketplace import lifecycle
from marketplace.errors import DomainError
from marketplace.providers import services as providers
from marketplace.ratings import services as ratings
from marketplace.ratings.models import SUB_SCORES
from marketplace.ratings.schemas import RatingInSchema, ReplyInSchema
from marketplace.web import forms
from marketplace.web.forms import FormInvalid
from marketplace.web.needs import act
from marketplace.web.providers import render_profile

bp = Blueprint("ratings", __name__)

RATING_ALIASES = {f"scores.{name}": name for name in SUB_SCORES}


@bp.route("/needs/<int:need_id>/rate", methods=["POST"])
@login_required
def rate(need_id: int) -> Any:
    form = request.form

    def run() -> None:
        data = forms.load(RatingInSchema(), {
            "stars": form.get("stars", ""), "comment": form.get("comment", ""),
            "scores": {name: form.get(name, "") for name in SUB_SCORES}}, aliases=RATING_ALIASES)
        lifecycle.rate(current_user, need_id, data)

    return act(need_id, "rate", run, "Thanks — your rating is published.", "#rating",
               RATING_ALIASES)


@bp.route("/p/<handle>/ratings/<int:rating_id>/reply", methods=["POST"])
@login_required
def reply(handle: str, rating_id: int) -> Any:
    provider = providers.by_handle(handle)
    try:
        rating = ratings.get(rating_id)
    except DomainError:
        abort(404)
    if rating.provider_id != provider.id:
        abort(404)
    try:
        data = forms.load(ReplyInSchema(), {"body": request.form.get("body", "")})
        ratings.reply(current_user, rating_id, data["body"])
    except FormInvalid as exc:
        return render_profile(handle, exc.errors, rating_id)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise  # not theirs: the error page says so
        return render_profile(handle, {"_form": [exc.message]}, rating_id)
    flash("Your reply is published.")
    return redirect(url_for("providers.profile", handle=provider.handle) + f"#rating-{rating_id}")
