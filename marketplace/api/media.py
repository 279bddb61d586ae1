"""JSON routes for images: your avatar, and the photos on your needs (and reading them)."""

from __future__ import annotations

from typing import Any

from flask import g

from marketplace import access
from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.media import services as media
from marketplace.media.http import image_response, takes_upload, uploaded
from marketplace.media.schemas import AvatarSchema, NeedPhotoSchema
from marketplace.needs import services as needs

blp = Blueprint("media_api", __name__, url_prefix="/api/v1", description="Images")

FORMATS = "a JPEG, PNG or WebP image (its content decides, not its name or Content-Type)"


def _body(field: str) -> dict[str, Any]:
    """The request body of an upload: a multipart form with the file in ``field``, or the
    image itself as the body."""
    binary = {"type": "string", "format": "binary"}
    return {"required": True, "description": f"{FORMATS}, at most `MEDIA_MAX_MB` and "
            "`MEDIA_MAX_MEGAPIXELS`. Animated images keep their first frame; all metadata "
            "(EXIF, GPS included) is dropped.",
            "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": [field], "properties": {field: binary}}},
                "image/jpeg": {"schema": binary}, "image/png": {"schema": binary},
                "image/webp": {"schema": binary}, "application/octet-stream": {"schema": binary}}}


IMAGE = {"content": {"image/webp": {"schema": {"type": "string", "format": "binary"}}},
         "headers": {"ETag": {"$ref": "#/components/headers/ETag"}}}


@blp.route("/me/avatar", methods=["PUT"])
@auth_required
@blp.limited("RATE_LIMIT_UPLOADS")
@blp.doc(requestBody=_body("avatar"))
@blp.response(200, AvatarSchema)
@takes_upload
def put_avatar() -> Any:
    """Set your photo (resized to 256 px and 64 px squares). Providers see it on your
    profile and offers; as a customer, only the provider whose offer you accept sees it."""
    return media.avatar_urls(media.set_avatar(g.user, uploaded("avatar")))


@blp.route("/me/avatar", methods=["DELETE"])
@auth_required
@blp.response(204)
def delete_avatar() -> None:
    """Remove your photo (people then see your initials)."""
    media.remove_avatar(g.user)


@blp.route("/needs/<int:need_id>/photos", methods=["POST"])
@auth_required
@blp.limited("RATE_LIMIT_UPLOADS")
@blp.doc(requestBody=_body("photo"))
@blp.response(201, NeedPhotoSchema)
@takes_upload
def add_need_photo(need_id: int) -> Any:
    """Add a photo to your open need (at most `NEED_PHOTOS_MAX`). Everyone who may see the
    need sees it; nobody else can fetch it."""
    need, _role = access.need_with_role(g.user, need_id)
    return media.photo_urls(needs.add_photo(g.user, need, lambda: uploaded("photo")))


@blp.route("/needs/<int:need_id>/photos/<int:photo_id>", methods=["DELETE"])
@auth_required
@blp.response(204)
def delete_need_photo(need_id: int, photo_id: int) -> None:
    """Remove a photo from your need."""
    need, _role = access.need_with_role(g.user, need_id)
    needs.remove_photo(g.user, need, photo_id)


@blp.route("/needs/<int:need_id>/photos/<int:photo_id>", methods=["GET"])
@auth_required
@blp.doc(responses={"200": {**IMAGE, "description": "The photo (WebP, at most 1600 px a side)."}})
def get_need_photo(need_id: int, photo_id: int) -> Any:
    """A photo of a need you may see (404 otherwise, as for the need)."""
    return image_response(access.need_photo(g.user, need_id, photo_id))


@blp.route("/needs/<int:need_id>/photos/<int:photo_id>/small", methods=["GET"])
@auth_required
@blp.doc(responses={"200": {**IMAGE, "description": "The photo, at most 400 px a side (WebP)."}})
def get_need_photo_small(need_id: int, photo_id: int) -> Any:
    """A need's photo, small (for lists and cards)."""
    return image_response(access.need_photo(g.user, need_id, photo_id, small=True))
