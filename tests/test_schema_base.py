"""``marketplace.schemas.Schema``, the base of every schema: it reads a value the way
marshmallow does, only without asking a proxy object for ``__getitem__`` first."""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import marshmallow
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import fields, post_dump
from marshmallow.utils import get_value

import marketplace
from marketplace import schemas
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


def test_a_proxy_is_asked_only_for_the_fields_dumped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "CHECK_DUMPS", False)  # it would ask a second time

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


# --------------------------------------------------------------------------------------------
# dumping the fast way (Schema._serialize) gives what marshmallow's own walk gives


class Shout(fields.String):
    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else str(value).upper()


class Cents(fields.Integer):
    num_type = float  # type: ignore[assignment]


class PartSchema(Schema):
    name = fields.String()
    size = fields.Integer()


class HookedSchema(Schema):
    name = fields.String()

    @post_dump
    def mark(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        return {**data, "hooked": True}


class EverySchema(Schema):
    text = fields.String()
    safe = schemas.SafeString()
    count = fields.Integer()
    counted = fields.Integer(as_string=True)
    cents = Cents()
    ratio = fields.Float()
    flag = fields.Boolean()
    shout = Shout()
    when = fields.AwareDateTime()
    renamed = fields.String(data_key="name_sent")
    elsewhere = fields.Integer(attribute="other")
    dotted = fields.String(attribute="part.name")
    defaulted = fields.String(dump_default="none given")
    part = fields.Nested(PartSchema, allow_none=True)
    parts = fields.List(fields.Nested(PartSchema))
    numbers = fields.List(fields.Integer())
    words = fields.List(fields.String(allow_none=True))
    hooked = fields.Nested(HookedSchema, allow_none=True)
    pieces = fields.Nested(PartSchema, many=True)
    day = fields.DateTime(format="%Y-%m-%d")
    computed = fields.Method("compute")
    plain = fields.Raw()

    def compute(self, obj: Any) -> str:
        return f"computed {getattr(obj, 'count', None)!r}"


class Thing:
    pass


class Part:
    def __init__(self, name: Any, size: Any) -> None:
        self.name, self.size = name, size


ANY = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.floats(allow_nan=False),
                st.booleans())
VALUES = {
    "text": ANY, "safe": ANY, "count": st.one_of(st.none(), st.integers(), st.booleans(),
                                                 st.floats(allow_nan=False,
                                                           allow_infinity=False)),
    "counted": st.one_of(st.none(), st.integers()), "cents": st.one_of(st.none(), st.integers()),
    "ratio": st.one_of(st.none(), st.floats(allow_nan=False), st.integers(), st.booleans()),
    "flag": st.one_of(st.none(), st.booleans(), st.integers(0, 1), st.sampled_from(["yes", "0"])),
    "shout": ANY, "when": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    "renamed": ANY, "other": st.one_of(st.none(), st.integers()), "defaulted": ANY,
    "part": st.one_of(st.none(), st.builds(Part, st.text(max_size=3), st.integers())),
    "parts": st.lists(st.builds(Part, st.text(max_size=3), st.integers()), max_size=3),
    "numbers": st.one_of(st.none(), st.lists(st.one_of(st.integers(), st.booleans(),
                                                       st.floats(-1e6, 1e6)), max_size=3)),
    "words": st.one_of(st.none(), st.lists(st.one_of(st.none(), st.text(max_size=3),
                                                     st.integers()), max_size=3)),
    "hooked": st.one_of(st.none(), st.builds(Part, st.text(max_size=3), st.integers())),
    "pieces": st.lists(st.builds(Part, st.text(max_size=3), st.integers()), max_size=2),
    "day": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    "plain": ANY,
}


@st.composite
def things(draw: st.DrawFn) -> Thing:
    """An object with any of the fields' attributes (an absent one is missing)."""
    thing = Thing()
    for name, values in VALUES.items():
        if draw(st.booleans()):
            setattr(thing, name, draw(values))
    return thing


@settings(deadline=None)  # the first example builds the schema's plan
@given(things())
def test_a_dump_is_marshmallows_dump(thing: Thing) -> None:
    schema = EverySchema()
    fast = schemas.Schema._serialize(schema, thing)
    theirs = marshmallow.Schema._serialize(schema, thing)
    assert fast == theirs
    assert list(fast) == list(theirs)  # the same keys in the same order
    assert EverySchema(many=True).dump([thing, thing]) == [theirs, theirs]


@settings(deadline=None)
@given(things())
def test_a_dict_is_dumped_as_marshmallow_dumps_it(thing: Thing) -> None:
    data = {**vars(thing), "part": {"name": "tap", "size": 3}}
    schema = EverySchema()
    fast = schemas.Schema._serialize(schema, data)
    theirs = marshmallow.Schema._serialize(schema, data)
    assert fast == theirs
    assert list(fast) == list(theirs)
    # a mapping that answers for absent keys is read by marshmallow itself
    answering = defaultdict(lambda: None, data)
    assert schemas.Schema._serialize(schema, answering) == marshmallow.Schema._serialize(
        schema, defaultdict(lambda: None, data))


def test_plain_values_are_dumped_without_marshmallows_calls_per_field(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "CHECK_DUMPS", False)
    calls: list[str] = []
    real = fields.Field.serialize

    def counted(self: fields.Field, attr: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(attr)
        return real(self, attr, *args, **kwargs)

    monkeypatch.setattr(fields.Field, "serialize", counted)
    thing = Thing()
    thing.text, thing.count, thing.ratio, thing.flag, thing.renamed = "a", 1, 0.5, True, None
    dumped = EverySchema(only=("text", "count", "ratio", "flag", "renamed", "computed")).dump(thing)
    assert dumped == {"text": "a", "count": 1, "ratio": 0.5, "flag": True, "name_sent": None,
                      "computed": "computed 1"}
    assert calls == ["computed"]  # only the field that reads no attribute
    calls.clear()
    # a plain dict the same way (a budget, a location, a page of items)
    data = {"text": "a", "count": 1, "ratio": 0.5, "flag": True, "renamed": None}
    dumped = EverySchema(only=("text", "count", "ratio", "flag", "renamed", "computed")).dump(data)
    assert dumped == {"text": "a", "count": 1, "ratio": 0.5, "flag": True, "name_sent": None,
                      "computed": "computed None"}  # it asks getattr, which a dict does not answer
    assert calls == ["computed"]


def test_nested_lists_and_times_are_dumped_without_marshmallows_calls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A nested schema of ours without hooks, a list of plain values or of such schemas, and an
    ISO time go straight to what marshmallow would write; a hooked schema, a list holding a
    value its field would change and a time in a strftime format still go through
    marshmallow."""
    monkeypatch.setattr(schemas, "CHECK_DUMPS", False)
    calls: list[str] = []
    for kind in (fields.Nested, fields.List, fields.DateTime):
        real = kind._serialize

        def counted(self: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            calls.append(type(self).__name__)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(kind, "_serialize", counted)
    thing = Thing()
    thing.part, thing.parts, thing.numbers = Part("a", 1), [Part("b", 2)], [1, 2]
    thing.words, thing.pieces = ["x", None], [Part("c", 3)]
    thing.when = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    fast = ("part", "parts", "numbers", "words", "pieces", "when")
    assert EverySchema(only=fast).dump(thing) == {
        "part": {"name": "a", "size": 1}, "parts": [{"name": "b", "size": 2}],
        "numbers": [1, 2], "words": ["x", None], "pieces": [{"name": "c", "size": 3}],
        "when": "2026-12-07T15:00:00+00:00"}
    assert calls == []
    thing.hooked, thing.numbers, thing.day = Part("d", 4), [1, True], thing.when
    dumped = EverySchema(only=("hooked", "numbers", "day")).dump(thing)
    assert dumped == {"hooked": {"name": "d", "hooked": True}, "numbers": [1, 1],
                      "day": "2026-12-07"}
    assert sorted(calls) == ["DateTime", "List", "Nested"]


def test_the_check_in_tests_catches_a_dump_that_differs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert schemas.CHECK_DUMPS  # tests/conftest.py

    class Wrong(PartSchema):
        @property
        def _plan(self) -> Any:  # a plan that reads the wrong attribute for "name"
            plan = PartSchema()._plan
            return [(key, "size" if key == "name" else attr, *rest)
                    for key, attr, *rest in plan]

    with pytest.raises(AssertionError, match="dumped"):
        Wrong().dump(Part("tap", 3))
