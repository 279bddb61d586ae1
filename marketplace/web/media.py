"""HTML routes for images: your photo (the account photo page), photos on a need (added and
removed from the need page), and serving both: an avatar by its digest to anyone, a need's
photo only to whoever may see the need."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace import access
from marketplace.errors import DomainError
from marketplace.extensions import limited
from marketplace.media import services as media
from marketplace.media.http import image_response, takes_upload, uploaded
from marketplace.needs import services as needs
from marketplace.web.forms import FormErrors

bp = Blueprint("media", __name__)


def initials(name: str | None) -> str:
    """What shows where a person has no photo (or it is not yours to see): up to two
    initials of the name as shown."""
    words = [w for w in (name or "").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def register(app: Flask) -> None:
    app.jinja_env.globals["avatar_urls"] = lambda user: media.avatar_urls(media.avatar_of(user))
    app.jinja_env.filters["initials"] = initials


@bp.route("/media/<string:digest>")
def avatar_image(digest: str) -> Any:
    """An avatar's image; only digests an avatar names now (need photos go by their need)."""
    return image_response(media.avatar_blob(digest))


@bp.route("/needs/<int:need_id>/photos/<int:photo_id>")
@login_required
def need_photo(need_id: int, photo_id: int) -> Any:
    return image_response(access.need_photo(current_user, need_id, photo_id))


@bp.route("/needs/<int:need_id>/photos/<int:photo_id>/small")
@login_required
def need_photo_small(need_id: int, photo_id: int) -> Any:
    return image_response(access.need_photo(current_user, need_id, photo_id, small=True))


def _refused(exc: DomainError, field: str) -> FormErrors:
    """A refusal in a person's words next to the file input (the message already says what to
    do: choose another image, a smaller one)."""
    return {field: list((exc.fields or {}).get(field) or [exc.message])}


@bp.route("/account/photo", methods=["GET", "POST"])
@login_required
@limited("RATE_LIMIT_UPLOADS", methods=["POST"])
@takes_upload
def account_photo() -> Any:
    """Your photo: upload one (JPEG, PNG or WebP) or remove it."""
    errors: FormErrors = {}
    if request.method == "POST":
        try:
            media.set_avatar(current_user, uploaded("avatar"))
        except DomainError as exc:
            errors = _refused(exc, "avatar")
        else:
            flash("Your photo is saved.")
            return redirect(url_for("media.account_photo"))
    return render_template("account/photo.html", errors=errors,
                           photo=media.avatar_urls(media.avatar_of(current_user)))


@bp.route("/account/photo/remove", methods=["POST"])
@login_required
def remove_account_photo() -> Any:
    media.remove_avatar(current_user)
    flash("Your photo is removed; people see your initials.")
    return redirect(url_for("media.account_photo"))


@bp.route("/needs/<int:need_id>/photos", methods=["POST"])
@login_required
@limited("RATE_LIMIT_UPLOADS")
@takes_upload
def add_need_photo(need_id: int) -> Any:
    need, _role = access.need_with_role(current_user, need_id)
    try:
        needs.add_photo(current_user, need, lambda: uploaded("photo"))
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        for message in _refused(exc, "photo")["photo"]:
            flash(message, "field:photo")  # shown next to the file input (needs/show.html)
    else:
        flash("Photo added.")
    return redirect(url_for("needs.show", need_id=need_id) + "#photos")


@bp.route("/needs/<int:need_id>/photos/<int:photo_id>/remove", methods=["POST"])
@login_required
def remove_need_photo(need_id: int, photo_id: int) -> Any:
    need, _role = access.need_with_role(current_user, need_id)
    needs.remove_photo(current_user, need, photo_id)
    flash("Photo removed.")
    return redirect(url_for("needs.show", need_id=need_id) + "#photos")
