"""Storing and reading images: what avatars and need photos share. Services elsewhere decide
who may add or see one; these functions only write and read rows (callers commit)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, exists, or_, select

from marketplace.accounts.models import User
from marketplace.db_types import utcnow
from marketplace.errors import DomainError, Invalid, NotFound
from marketplace.extensions import db
from marketplace.media import images
from marketplace.media.models import Avatar, MediaBlob, NeedPhoto

AVATAR_SIDE = 256
AVATAR_SMALL_SIDE = 64
PHOTO_SIDE = 1600
PHOTO_SMALL_SIDE = 400


class PayloadTooLarge(DomainError):
    status, code = 413, "payload_too_large"


def max_bytes() -> int:
    return int(float(current_app.config["MEDIA_MAX_MB"]) * 1_000_000)


def max_pixels() -> int:
    return int(float(current_app.config["MEDIA_MAX_MEGAPIXELS"]) * 1_000_000)


def refuse(field: str, reason: str, too_large: bool = False) -> DomainError:
    """The error for an upload in ``field``: 413 when it is too large, else 422."""
    cls = PayloadTooLarge if too_large else Invalid
    return cls(reason, {field: [reason]})


def decode(data: bytes, field: str) -> Any:
    """The pixels of ``data`` (see ``images.read``), or the 413/422 naming ``field``."""
    try:
        return images.read(data, max_bytes=max_bytes(), max_pixels=max_pixels())
    except images.ImageRefused as exc:
        raise refuse(field, exc.reason, exc.too_large) from exc


def _store(encoded: images.Encoded) -> str:
    digest = encoded.digest
    if db.session.get(MediaBlob, digest) is None:
        db.session.add(MediaBlob(digest=digest, content_type=encoded.content_type,
                                 width=encoded.width, height=encoded.height, data=encoded.data))
        db.session.flush()
    return digest


def _referencing_columns() -> list[Any]:
    """Every column with a foreign key to ``media_blobs.digest`` (read from the metadata, so a
    new kind of image is counted without touching this)."""
    blobs = MediaBlob.__table__
    return [fk.parent for table in db.metadata.tables.values() for fk in table.foreign_keys
            if fk.column.table is blobs]


def discard_unused(digests: Iterable[str]) -> None:
    """Delete those of ``digests`` that nothing refers to any more."""
    wanted = [d for d in set(digests) if d]
    if not wanted:
        return
    used = or_(*(exists().where(column == MediaBlob.digest) for column in _referencing_columns()))
    db.session.execute(delete(MediaBlob).where(MediaBlob.digest.in_(wanted), ~used)
                       .execution_options(synchronize_session=False))


# Read on every page (the header's picture) and beside every need and offer: built once with
# bound values (building a statement and its cache key cost more than running it).
_AVATAR = select(Avatar).where(Avatar.user_id == bindparam("user"))
_AVATARS = select(Avatar).where(Avatar.user_id.in_(bindparam("users", expanding=True)))
_PHOTOS = select(NeedPhoto).where(NeedPhoto.need_id == bindparam("need")).order_by(NeedPhoto.id)
_PHOTOS_OF_NEEDS = (select(NeedPhoto)
                    .where(NeedPhoto.need_id.in_(bindparam("needs", expanding=True)))
                    .order_by(NeedPhoto.id))


def avatar_of(user: User | None,
              batch: Mapping[int, Avatar | None] | None = None) -> Avatar | None:
    """``user``'s avatar; from ``batch`` (``avatars_for``) when it looked them up, so a list
    of people costs one statement, not one per person."""
    if user is None or user.erased_at is not None:
        return None
    if batch is not None and user.id in batch:
        return batch[user.id]
    return db.session.scalar(_AVATAR, {"user": user.id})


def avatars_for(users: Iterable[User | None]) -> dict[int, Avatar | None]:
    """Every one of ``users``' avatars in one statement, by user id (None: none, or erased),
    for ``avatar_of(user, batch)``."""
    people = {u.id: u for u in users if u is not None}
    found = avatars_of(i for i, u in people.items() if u.erased_at is None)
    return {i: found.get(i) for i in people}


def avatars_of(user_ids: Iterable[int]) -> dict[int, Avatar]:
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return {a.user_id: a for a in db.session.scalars(_AVATARS, {"users": ids})}


def set_avatar(user: User, data: bytes, field: str = "avatar") -> Avatar:
    """Replace ``user``'s avatar with ``data`` (any JPEG, PNG or WebP) and commit."""
    image = decode(data, field)
    digest = _store(images.square(image, AVATAR_SIDE))
    small = _store(images.square(image, AVATAR_SMALL_SIDE))
    avatar = db.session.get(Avatar, user.id)
    old = [] if avatar is None else [avatar.digest, avatar.small_digest]
    if avatar is None:
        avatar = Avatar(user_id=user.id)
        db.session.add(avatar)
    avatar.digest, avatar.small_digest, avatar.updated_at = digest, small, utcnow()
    db.session.flush()
    discard_unused(old)
    db.session.commit()
    return avatar


def remove_avatar(user: User) -> None:
    """Remove ``user``'s avatar (nothing to do when there is none) and commit."""
    avatar = db.session.get(Avatar, user.id)
    if avatar is not None:
        old = [avatar.digest, avatar.small_digest]
        db.session.delete(avatar)
        db.session.flush()
        discard_unused(old)
    db.session.commit()


def avatar_blob(digest: str) -> MediaBlob:
    """An avatar's image by digest: only digests an avatar names now (a need photo's digest
    is not an avatar's, and is served only through its need)."""
    named = exists().where(or_(Avatar.digest == digest, Avatar.small_digest == digest))
    blob = db.session.scalar(select(MediaBlob).where(MediaBlob.digest == digest, named))
    if blob is None:
        raise NotFound("No such image.")
    return blob


def photos_of(need_id: int) -> list[NeedPhoto]:
    return list(db.session.scalars(_PHOTOS, {"need": need_id}))


def photos_for(need_ids: Iterable[int]) -> dict[int, list[NeedPhoto]]:
    """The photos of each of ``need_ids`` (in ``photos_of``'s order) in one statement."""
    ids = sorted(set(need_ids))
    found: dict[int, list[NeedPhoto]] = {}
    if ids:
        for p in db.session.scalars(_PHOTOS_OF_NEEDS, {"needs": ids}):
            found.setdefault(p.need_id, []).append(p)
    return found


def count_photos(need_id: int) -> int:
    return len(photos_of(need_id))


def add_photo(need_id: int, data: bytes, field: str = "photo") -> NeedPhoto:
    """Store ``data`` as a photo of need ``need_id`` (callers check the rules and commit)."""
    image = decode(data, field)
    full = images.within(image, PHOTO_SIDE)
    digest = _store(full)
    small = _store(images.within(image, PHOTO_SMALL_SIDE))
    photo = NeedPhoto(need_id=need_id, digest=digest, small_digest=small, width=full.width,
                      height=full.height)
    db.session.add(photo)
    db.session.flush()
    return photo


def photo(need_id: int, photo_id: int) -> NeedPhoto:
    found = db.session.get(NeedPhoto, photo_id)
    if found is None or found.need_id != need_id:
        raise NotFound("No such photo.")
    return found


def remove_photos(photos: Iterable[NeedPhoto]) -> None:
    """Delete ``photos`` and the images nothing else uses (callers commit)."""
    old: list[str] = []
    for p in photos:
        old += [p.digest, p.small_digest]
        db.session.delete(p)
    db.session.flush()
    discard_unused(old)


def remove_photos_of_needs(need_ids: Iterable[int]) -> None:
    ids = list(need_ids)
    if ids:
        remove_photos(db.session.scalars(select(NeedPhoto).where(NeedPhoto.need_id.in_(ids))))


def blob(digest: str) -> MediaBlob:
    found = db.session.get(MediaBlob, digest)
    if found is None:
        raise NotFound("No such image.")
    return found


def avatar_urls(avatar: Avatar | None) -> dict[str, str] | None:
    """What ``AvatarSchema`` dumps: the public paths of an avatar's two sizes."""
    if avatar is None:
        return None
    return {"url": f"/media/{avatar.digest}", "small_url": f"/media/{avatar.small_digest}"}


def photo_urls(photo: NeedPhoto) -> dict[str, Any]:
    """What ``NeedPhotoSchema`` dumps (the API paths; pages use their own)."""
    base = f"/api/v1/needs/{photo.need_id}/photos/{photo.id}"
    return {"id": photo.id, "url": base, "small_url": f"{base}/small", "width": photo.width,
            "height": photo.height}
