"""``marketplace.schemas.Schema``, the base of every schema: it reads a value the way
marshmallow does, only without asking a proxy object for ``__getitem__`` first."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import marshmallow
import pytest
from marshmallow import fields
from marshmallow.utils import get_value

import marketplace
from marketplace.schemas import Schema


class Wrapped:
    def __init__(self) -> None:
        self.title = "Fix a tap"
        self.asked: list[str] = []


class View:
    """Like NeedView: its own attributes, and every other name passed to what it wraps."""

    def __init__(self, wrapped: Wrapped) -> None:
        self.wrapped = wrapped

    @property
    def role(self) -> str:
        return "matched_provider"

    def __getattr__(self, name: str) -> Any:
        self.wrapped.asked.append(name)
        return getattr(self.wrapped, name)


class Keyed:
    def __getitem__(self, key: str) -> str:
        if key == "given":
            return "by key"
        raise KeyError(key)

    given = "by attribute"
    other = "attribute only"


@pytest.mark.parametrize("obj, attr", [
    (View(Wrapped()), "title"), (View(Wrapped()), "role"), (View(Wrapped()), "missing"),
    ({"title": "x"}, "title"), ({"title": "x"}, "missing"), ({"items": 1}, "items"),
    (Keyed(), "given"), (Keyed(), "other"), (Keyed(), "missing"),
    ({"a": {"b": 2}}, "a.b"), (View(Wrapped()), "wrapped.title"),
])
def test_values_are_read_as_marshmallow_reads_them(obj: Any, attr: str) -> None:
    default = object()
    assert Schema().get_attribute(obj, attr, default) == get_value(obj, attr, default)


def test_a_proxy_is_asked_only_for_the_fields_dumped() -> None:
    class TitleSchema(Schema):
        title = fields.String()
        role = fields.String()

    wrapped = Wrapped()
    assert TitleSchema().dump(View(wrapped)) == {"title": "Fix a tap",
                                                 "role": "matched_provider"}
    assert wrapped.asked == ["title"]  # not "__getitem__" once per field


def test_every_schema_of_the_app_has_this_base() -> None:
    for module in pkgutil.walk_packages(marketplace.__path__, "marketplace."):
        if module.name != "marketplace.serve":  # it patches the standard library for gevent
            importlib.import_module(module.name)
    ours = [cls for cls in all_subclasses(marshmallow.Schema)
            if cls.__module__.startswith("marketplace.") and cls is not Schema]
    assert len(ours) > 50
    assert [cls.__qualname__ for cls in ours if not issubclass(cls, Schema)] == []


def all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *all_subclasses(sub)]
    return found
