"""The HTTP side of uploads, shared by the API and the pages: taking the bodies of upload
routes (and only theirs) up to MEDIA_MAX_MB, reading the image from a request, and serving a
stored image with its digest as a long-lived ETag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from marketplace.errors import Invalid, UnsupportedMediaType
from marketplace.media import services as media
from marketplace.media.models import MediaBlob

#: What a multipart form carries besides the image (boundaries, the CSRF token, names).
FORM_SLACK = 64 * 1024
YEAR = 365 * 24 * 3600


def takes_upload(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a route whose body is an image: it may be MEDIA_MAX_MB (plus a form's slack)
    instead of the app's MAX_CONTENT_LENGTH."""
    view.takes_upload = True  # type: ignore[attr-defined]
    return view


def register(app: Flask) -> None:
    """Raise the body limit for upload routes, before anything (CSRF) reads the body."""

    @app.before_request
    def upload_limit() -> None:
        view = current_app.view_functions.get(request.endpoint or "")
        if getattr(view, "takes_upload", False):
            request.max_content_length = media.max_bytes() + FORM_SLACK


def too_large(field: str) -> Exception:
    return media.refuse(field, f"The image is over {media.max_bytes() / 1_000_000:g} MB; send "
                        "a smaller one.", too_large=True)


def uploaded(field: str) -> bytes:
    """The image sent: the file in multipart form field ``field``, or the whole body sent with
    an ``image/*`` (or ``application/octet-stream``) Content-Type. Which type it really is,
    the bytes decide (``images.read``), not the Content-Type or the file's name."""
    limit = media.max_bytes()
    declared = request.content_length
    if declared is not None and declared > limit + FORM_SLACK:
        raise too_large(field)
    mimetype = request.mimetype
    try:
        if mimetype == "multipart/form-data":
            file = request.files.get(field)
            if file is None:
                message = f"Choose an image to send as the form field '{field}'."
                raise Invalid(message, {field: [message]})
            data = file.read(limit + 1)
        elif mimetype.startswith("image/") or mimetype == "application/octet-stream":
            data = request.get_data(cache=False)
        else:
            sent = f"got {mimetype}" if mimetype else "no Content-Type was sent"
            raise UnsupportedMediaType(
                f"Send the image as multipart/form-data (field '{field}') or as the body with "
                f"an image/* Content-Type ({sent}).",
                {"Content-Type": ["Must be multipart/form-data or image/*."]})
    except RequestEntityTooLarge as exc:
        raise too_large(field) from exc
    if len(data) > limit:
        raise too_large(field)
    return data


def image_response(blob: MediaBlob) -> Response:
    """``blob`` as its own type, cacheable for a year under its digest (a new picture has a
    new digest, so nothing is ever stale), never sniffed; 304 when the client has it."""
    etag = blob.digest
    headers = {"Cache-Control": f"private, max-age={YEAR}, immutable",
               "X-Content-Type-Options": "nosniff",
               "Content-Disposition": "inline"}
    if request.if_none_match.contains(etag):
        response = Response(status=304, headers=headers)
    else:
        response = Response(blob.data, mimetype=blob.content_type, headers=headers)
    response.set_etag(etag)
    return response
