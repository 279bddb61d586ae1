"""Cursor pagination: newest first by id; the cursor is opaque to clients."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar

from marshmallow import Schema, fields, validate
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from marketplace.errors import Invalid
from marketplace.extensions import db

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR = 2**31 - 1  # ids and offsets fit a database integer; anything else is forged


class PageArgs(Schema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=64))
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )


def _encode(kind: str, *numbers: int) -> str:
    return base64.urlsafe_b64encode(":".join((kind, *map(str, numbers))).encode()) \
        .decode().rstrip("=")


def _decode(cursor: str, kind: str, count: int) -> list[int]:
    """The numbers of a cursor of ``kind`` that this API handed out, or a 422 naming it."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, *texts = raw.split(":")
        numbers = [int(t) for t in texts]
        if prefix != kind or len(numbers) != count \
                or not all(0 <= n <= MAX_CURSOR for n in numbers):
            raise ValueError(cursor)
        return numbers
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise Invalid("The cursor is not one this API handed out.",
                      {"cursor": ["Not a valid cursor."]}) from None


def encode_cursor(last_id: int) -> str:
    """A keyset cursor: the page after it holds the ids below ``last_id`` (newest first)."""
    return _encode("id", last_id)


def decode_cursor(cursor: str) -> int:
    return _decode(cursor, "id", 1)[0]


def encode_ranked_cursor(rank: int, last_id: int) -> str:
    """A cursor for a list ordered by a small rank, then newest first (the feed: band, id)."""
    return _encode("rank", rank, last_id)


def decode_ranked_cursor(cursor: str, ranks: int) -> tuple[int, int]:
    """(rank, last id) of a cursor from ``encode_ranked_cursor``; ranks are 0..ranks-1."""
    rank, last_id = _decode(cursor, "rank", 2)
    if rank >= ranks:
        _decode("", "rank", 2)  # refused like any other forged cursor
    return rank, last_id


def encode_offset_cursor(offset: int) -> str:
    """A cursor into a short list ordered by something other than id (offers by price)."""
    return _encode("at", offset)


def decode_offset_cursor(cursor: str) -> int:
    return _decode(cursor, "at", 1)[0]


def paginate(stmt: Select[Any], id_column: InstrumentedAttribute[int], cursor: str | None,
             limit: int) -> tuple[Sequence[Any], str | None]:
    """Run ``stmt`` newest first; return one page and the cursor of the next (or None)."""
    if cursor:
        stmt = stmt.where(id_column < decode_cursor(cursor))
    rows = db.session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)).all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None


def offset_page(items: Sequence[T], cursor: str | None, limit: int) -> tuple[Sequence[T], str | None]:
    """One page of an already ordered, bounded list (ordered by something other than id)."""
    start = decode_offset_cursor(cursor) if cursor else 0
    chunk = items[start : start + limit]
    end = start + len(chunk)
    return chunk, (encode_offset_cursor(end) if end < len(items) else None)


_page_schemas: dict[str, type[Schema]] = {}


def page_of(item: type[Schema]) -> type[Schema]:
    """An output schema ``{items: [item], next_cursor}`` named after the item schema."""
    name = item.__name__.removesuffix("Schema") + "PageSchema"
    if name not in _page_schemas:
        _page_schemas[name] = type(
            name,
            (Schema,),
            {
                "items": fields.List(fields.Nested(item), required=True),
                "next_cursor": fields.String(allow_none=True, required=True),
            },
        )
    return _page_schemas[name]


def page(items: Sequence[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
