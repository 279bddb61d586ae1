"""Column types shared by the feature models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: ``__table_args__`` of every table whose integer id the database assigns: on SQLite the table is
#: AUTOINCREMENT, so the id of a deleted row is never handed out again (without it SQLite reuses
#: the highest id once that row is gone). PostgreSQL sequences never go back anyway.
IDS_NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC on every backend; always hands back aware UTC datetimes.

    SQLite has no time zones, so storing naive UTC everywhere keeps both backends identical.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Hideable:
    """Content an admin can hide (moderation): a hidden row stays in the database for audit,
    but every reader outside the admin queue gets 404 for it, as for what they cannot see.
    ``hidden_by`` is the admin's user id (who did it is also in ``moderation_log``)."""

    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hidden_by: Mapped[int | None] = mapped_column(Integer)

    @property
    def hidden(self) -> bool:
        return self.hidden_at is not None


# Many ids in one statement whose text never changes, whatever their number (so it is
# prepared once, and no IN list of a thousand parameters is rendered): bound as one value --
# an integer array on PostgreSQL, a JSON array's text on SQLite -- and read back as the rows of
# a subquery with one column, ``value``.
ID_SET_SQL = {
    "postgresql": "SELECT unnest(CAST(:{name} AS integer[])) AS value",
    "sqlite": "SELECT value FROM json_each(:{name})",
}


def id_set(dialect: str, name: str = "ids") -> str:
    """``(SELECT ...)``: the ids bound to ``:name`` (``id_set_value``), as rows of ``value``."""
    return "(" + ID_SET_SQL[dialect].format(name=name) + ")"


def id_set_value(dialect: str, ids: list[int]) -> Any:
    """What to bind to an ``id_set``'s parameter on ``dialect``."""
    return ids if dialect == "postgresql" else json.dumps(ids)
