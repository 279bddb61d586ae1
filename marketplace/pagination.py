"""Cursor pagination: newest first by id; the cursor is opaque to clients."""

from __future__ import annotations

import base64
import functools
import re
import struct
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Response, g, request
from marshmallow import fields, validate
from sqlalchemy import Select, bindparam
from sqlalchemy.orm import InstrumentedAttribute

from marketplace.errors import Invalid
from marketplace.extensions import db
from marketplace.schemas import Schema

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR = 2**31 - 1  # ids and offsets fit a database integer

# A cursor is 12 base64url characters: 9 bytes, a kind (the top 6 bits of the first byte, so
# the first character names the kind) and two unsigned 32-bit numbers. Every string of that
# shape decodes, so the OpenAPI pattern is the whole rule: a cursor of the list's kind with any
# numbers is a page (numbers past the end are clamped: an empty or a first page), anything else
# is a 422 naming ``cursor``.
KINDS = {"id": "I", "rank": "R", "at": "O"}
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
NOT_A_CURSOR = "Not a valid cursor."


def cursor_pattern(kind: str) -> str:
    return f"^{KINDS[kind]}[A-Za-z0-9_-]{{11}}$"


def _cursor_field(kind: str) -> fields.String:
    pattern = cursor_pattern(kind)
    return fields.String(
        load_default=None,
        validate=validate.Regexp(pattern[:-1] + r"\Z", error=NOT_A_CURSOR),
        metadata={"pattern": pattern, "description": "`next_cursor` of the page before (opaque)."})


class PageArgs(Schema):
    """A list newest first by id (keyset pages)."""

    cursor = _cursor_field("id")
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )


class RankedPageArgs(PageArgs):
    """A list ordered by a small rank, then newest first (the feed)."""

    cursor = _cursor_field("rank")


class OffsetPageArgs(PageArgs):
    """A short list ordered by something other than id (offset pages)."""

    cursor = _cursor_field("at")


def _encode(kind: str, first: int, second: int) -> str:
    head = _ALPHABET.index(KINDS[kind]) << 2
    raw = struct.pack(">BII", head, first, second)
    return base64.urlsafe_b64encode(raw).decode()


def _decode(cursor: str, kind: str) -> tuple[int, int]:
    """The two numbers of a cursor of ``kind`` (clamped to what fits), or a 422 naming it."""
    if not re.fullmatch(cursor_pattern(kind)[1:-1], cursor):
        raise Invalid("The cursor is not one this API handed out.",
                      {"cursor": [NOT_A_CURSOR]})
    _head, first, second = struct.unpack(">BII", base64.urlsafe_b64decode(cursor))
    return min(first, MAX_CURSOR), min(second, MAX_CURSOR)


def encode_cursor(last_id: int) -> str:
    """A keyset cursor: the page after it holds the ids below ``last_id`` (newest first)."""
    return _encode("id", 0, last_id)


def decode_cursor(cursor: str) -> int:
    return _decode(cursor, "id")[1]


def encode_ranked_cursor(rank: int, last_id: int) -> str:
    """A cursor for a list ordered by a small rank, then newest first (the feed: band, id)."""
    return _encode("rank", rank, last_id)


def decode_ranked_cursor(cursor: str, ranks: int) -> tuple[int, int]:
    """(rank, last id) of a cursor from ``encode_ranked_cursor``; ranks are 0..ranks-1 (a
    larger one is the last rank)."""
    rank, last_id = _decode(cursor, "rank")
    return min(rank, ranks - 1), last_id


def encode_offset_cursor(offset: int) -> str:
    """A cursor into a short list ordered by something other than id (offers by price)."""
    return _encode("at", 0, offset)


def decode_offset_cursor(cursor: str) -> int:
    return _decode(cursor, "at")[1]


def paginate(stmt: Select[Any], id_column: InstrumentedAttribute[int], cursor: str | None,
             limit: int) -> tuple[Sequence[Any], str | None]:
    """Run ``stmt`` newest first; return one page and the cursor of the next (or None)."""
    if cursor:
        stmt = stmt.where(id_column < decode_cursor(cursor))
    return _one_page(db.session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)).all(),
                     limit)


def _one_page(rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], str | None]:
    """``limit`` of up to ``limit + 1`` rows read, and the next page's cursor if one more was."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None


@functools.lru_cache(maxsize=64)
def _paged(stmt: Select[Any], id_column: InstrumentedAttribute[int], after: bool) -> Select[Any]:
    if after:
        stmt = stmt.where(id_column < bindparam("page_below"))
    return stmt.order_by(id_column.desc()).limit(bindparam("page_limit"))


def paginate_built(stmt: Select[Any], params: dict[str, Any],
                   id_column: InstrumentedAttribute[int], cursor: str | None,
                   limit: int) -> tuple[Sequence[Any], str | None]:
    """``paginate`` for a statement built once, with ``params`` for its bind parameters: the
    page's order, limit and cursor are added once per statement too (a list built on every
    request cost more CPU than SQLite took to run it). ``stmt`` must be a constant: each new
    one takes a place in the cache."""
    params = {**params, "page_limit": limit + 1}
    if cursor:
        params["page_below"] = decode_cursor(cursor)
    return _one_page(
        db.session.scalars(_paged(stmt, id_column, bool(cursor)), params).unique().all(), limit)


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
    """A page's body; its ``next_cursor`` also goes out as the response's ``Link`` header."""
    g.next_cursor = next_cursor
    return {"items": items, "next_cursor": next_cursor}


def next_link(response: Response) -> Response:
    """``Link: <this request with cursor=next>; rel="next"`` on a page that has a next one
    (RFC 8288; the same cursor as the body's ``next_cursor``)."""
    cursor = g.pop("next_cursor", None)
    params = g.pop("next_params", None) or ({"cursor": cursor} if cursor else None)
    if params and response.status_code == 200:
        query = [(k, v) for k, v in request.args.items(multi=True) if k not in params]
        url = f"{request.path}?{urlencode([*query, *params.items()])}"
        response.headers["Link"] = f'<{url}>; rel="next"'
    return response


def next_params(**params: Any) -> None:
    """A list that pages by something other than a cursor (the notifications, by seq or id):
    the query parameters that ask for its next page, for the ``Link`` header."""
    g.next_params = {k: str(v) for k, v in params.items()}
