from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db_types import IDS_NEVER_REUSED, UTCDateTime, utcnow
from marketplace.extensions import db


class MediaBlob(db.Model):
    """One re-encoded image, keyed by the SHA-256 of its bytes (what the ETag is): the same
    picture uploaded twice is stored once. Rows that no avatar or photo names are deleted with
    the last one that did (``services.discard_unused``)."""

    __tablename__ = "media_blobs"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Avatar(db.Model):
    """A person's photo: a 256 px square and a small one. Who may see a customer's avatar is
    the rule for their full name (shown only to the provider they accepted)."""

    __tablename__ = "avatars"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    digest: Mapped[str] = mapped_column(ForeignKey("media_blobs.digest"), index=True)
    small_digest: Mapped[str] = mapped_column(ForeignKey("media_blobs.digest"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NeedPhoto(db.Model):
    """A photo on a need, seen by whoever may see the need (``access.need_photo``)."""

    __tablename__ = "need_photos"
    __table_args__ = (Index("ix_need_photos_need_id_id", "need_id", "id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(ForeignKey("media_blobs.digest"), index=True)
    small_digest: Mapped[str] = mapped_column(ForeignKey("media_blobs.digest"), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
