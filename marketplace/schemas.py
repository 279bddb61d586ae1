"""Schema pieces shared by several features (money, points, timestamps)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import marshmallow
from marshmallow import ValidationError, fields, missing, validate, validates_schema
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import get_value

from marketplace.money import CURRENCIES, MAX_AMOUNT

#: Set by the tests: every dump of an object is made twice, the fast way and marshmallow's
#: own, and the two must be equal (``Schema._serialize``).
CHECK_DUMPS = False

# How ``Schema._serialize`` writes a field whose value it read: ``_AS_IS`` for a value of
# the field's own type that marshmallow would return unchanged (a ``str`` from a String, an
# ``int`` from an Integer, a ``float`` from a Float, a ``bool`` from a Boolean; None from any
# of them); every other value and every other field through the field's own ``_serialize``.
_AS_IS = {fields.String: str, fields.Integer: int, fields.Float: float, fields.Boolean: bool}


def _as_is(field: fields.Field) -> type | None:
    """The type whose values ``field`` dumps unchanged, or None."""
    for kind, value_type in _AS_IS.items():
        if (isinstance(field, kind) and type(field)._serialize is kind._serialize
                and getattr(type(field), "_format_num", None) is getattr(kind, "_format_num", None)
                and getattr(type(field), "num_type", None) is getattr(kind, "num_type", None)
                and not getattr(field, "as_string", False)):
            return value_type
    return None


def _direct(field: fields.Field) -> Callable[[Any, str, Any], Any] | None:
    """A function that dumps a value of ``field`` as the field's ``_serialize`` would, without
    the calls marshmallow makes on the way, or None: a ``Nested`` schema of ours without dump
    hooks (``Schema.dump`` is then just its ``_serialize``), a ``List`` of values dumped as they
    are or of such nested ones, and a ``DateTime`` in a format marshmallow writes with a
    function (ISO 8601: ``datetime.isoformat``)."""
    kind = type(field)
    if isinstance(field, fields.Nested) and kind._serialize is fields.Nested._serialize:
        schema = field.schema
        if (not isinstance(schema, Schema) or schema._hooks[PRE_DUMP]
                or schema._hooks[POST_DUMP]):
            return None
        serialize = schema._serialize
        if schema.many or field.many:
            return lambda value, _name, _obj: (None if value is None
                                               else serialize(value, many=True))
        return lambda value, _name, _obj: None if value is None else serialize(value)
    if isinstance(field, fields.List) and kind._serialize is fields.List._serialize:
        inner = field.inner
        item_type, item = _as_is(inner), _direct(inner)
        if item_type is not None:
            def as_is_items(value: Any, name: str, obj: Any) -> Any:
                if value is None:
                    return None
                items = list(value)
                if all(x is None or type(x) is item_type for x in items):
                    return items
                return field._serialize(items, name, obj)
            return as_is_items
        if item is not None:
            return lambda value, name, obj: (None if value is None
                                             else [item(x, name, obj) for x in value])
        return None
    if isinstance(field, fields.DateTime) and kind._serialize is fields.DateTime._serialize:
        write = kind.SERIALIZATION_FUNCS.get(field.format or kind.DEFAULT_FORMAT)
        if write is None:
            return None
        return lambda value, _name, _obj: None if value is None else write(value)
    return None


def _from_dict(obj: dict[str, Any], key: str, default: Any) -> Any:
    """A dict's value as marshmallow's ``get_value`` reads it: the item, else the attribute
    (a dict has no ``__missing__`` to call)."""
    return obj[key] if key in obj else getattr(obj, key, default)


class Schema(marshmallow.Schema):
    """Every schema of the app. A field's value is read straight off an object by name, which
    is what marshmallow ends up doing for one. marshmallow first asks ``hasattr(obj,
    "__getitem__")`` of every value of every object it dumps, and for a view that passes
    unknown names on to what it wraps (``NeedView``) that question costs a failed attribute
    lookup each time; the type is asked here instead. Dicts, sequences and dotted names go
    through marshmallow's own ``get_value``, unchanged.

    Dumping an object walks a plan made once per schema instance (``_plan``) instead of
    marshmallow's four calls per field (``serialize``, ``get_value``, the accessor and the
    field's ``_serialize``): most values of an answer are strings, numbers and None that
    marshmallow returns unchanged, and a feed page has some 700 of them. What the plan cannot
    say the same way goes to marshmallow: a sequence or a mapping other than a plain dict
    being dumped (a dict's values are read as ``get_value`` reads them), a dotted
    ``attribute``, a field that reads no attribute (Method, Function) or that has a
    ``dump_default``, and a value that is missing. ``CHECK_DUMPS`` compares the two in tests."""

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if "." in attr or hasattr(type(obj), "__getitem__"):
            return get_value(obj, attr, default)
        return getattr(obj, attr, default)

    @cached_property
    def _plan(self) -> list[tuple[str, str, str, fields.Field, type | None, bool,
                                  Callable[[Any, str, Any], Any] | None]]:
        """(key, attribute, field name, field, the type dumped as is, read by name?, the
        direct dump of its value) per dumped field, in marshmallow's order."""
        plan = []
        for name, field in self.dump_fields.items():
            attribute = field.attribute if field.attribute is not None else name
            by_name = (field._CHECK_ATTRIBUTE and "." not in attribute
                       and field.dump_default is missing)
            plan.append((field.data_key if field.data_key is not None else name, attribute,
                         name, field, _as_is(field), by_name, _direct(field)))
        return plan

    def _serialize(self, obj: Any, *, many: bool = False) -> Any:
        if many and obj is not None:
            return [self._serialize(item) for item in obj]
        if type(obj) is dict:
            read = _from_dict
        elif hasattr(type(obj), "__getitem__"):
            return super()._serialize(obj)
        else:
            read = getattr
        ret = {}
        accessor = self.get_attribute
        for key, attribute, name, field, value_type, by_name, direct in self._plan:
            if not by_name:
                value = field.serialize(name, obj, accessor=accessor)
                if value is not missing:
                    ret[key] = value
                continue
            value = read(obj, attribute, missing)
            if value is missing:
                continue  # no dump_default (else not by name): marshmallow leaves it out
            if value is None and value_type is not None or type(value) is value_type:
                ret[key] = value
            elif direct is not None:
                ret[key] = direct(value, name, obj)
            else:
                ret[key] = field._serialize(value, name, obj)
        if CHECK_DUMPS:
            expected = super()._serialize(obj)
            if ret != expected or list(ret) != list(expected):
                raise AssertionError(f"{type(self).__name__} dumped {ret!r}, marshmallow "
                                     f"{expected!r}")
        return ret


#: What OpenAPI can say of a string the server stores: no NUL anywhere.
NO_NUL = "^[^\\u0000]*$"


def trimmed_pattern(min_len: int) -> str:
    """A pattern for text that is at least ``min_len`` characters once trimmed, without NUL."""
    if min_len <= 0:
        return NO_NUL
    if min_len == 1:
        return "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
    return f"^\\s*[^\\s\\u0000][^\\u0000]{{{min_len - 2},}}[^\\s\\u0000]\\s*$"


def text(max_len: int, *, min_len: int = 0, **kwargs: Any) -> fields.String:
    """A string field with a length range and surrounding whitespace removed."""
    message = (f"Must be {min_len}-{max_len} characters." if min_len > 1 else
               "Must not be empty; at most {max} characters." if min_len == 1 else
               "At most {max} characters.")
    kwargs["metadata"] = {"pattern": trimmed_pattern(min_len), **kwargs.get("metadata", {})}
    return TrimmedString(validate=validate.Length(min=min_len, max=max_len, error=message),
                         **kwargs)


def _storable(text: str) -> str:
    """Refuse what no database column can hold: NUL and unpaired surrogates."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Must be valid Unicode text.") from None
    return text


class SafeString(fields.String):
    """Every input string: exactly what was sent, if it can be stored."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metadata = {"pattern": NO_NUL, **self.metadata}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return _storable(super()._deserialize(value, attr, data, **kwargs))


class SafeEmail(fields.Email):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return _storable(super()._deserialize(value, attr, data, **kwargs))


class TrimmedString(SafeString):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class UTCDateTimeField(fields.AwareDateTime):
    """Read as UTC at once, within years a calendar can hold either side of the conversion."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        try:
            result = result.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Not a usable date.") from None
        if not 2000 <= result.year <= 2200:
            raise ValidationError("Must be between the years 2000 and 2200.")
        return result


#: The years ``UTCDateTimeField`` takes (2000-2200 in UTC), as OpenAPI can say it: 2001-2199
#: as written, which stays within them whatever the offset.
YEARS = "^(200[1-9]|20[1-9][0-9]|21[0-9][0-9])-"


def aware_datetime(**kwargs: Any) -> fields.AwareDateTime:
    """ISO 8601 datetimes; a value without an offset is taken as UTC."""
    kwargs["metadata"] = {"pattern": YEARS, **kwargs.get("metadata", {})}
    return UTCDateTimeField(default_timezone=UTC, **kwargs)


class MoneySchema(Schema):
    """A budget or a price: positive (a 0 budget would have providers "take it at 0.00")."""

    amount = fields.Integer(
        required=True, strict=True,
        validate=[validate.Range(min=1, error="Must be more than 0."),
                  validate.Range(max=MAX_AMOUNT)],
        metadata={"description": "Integer minor units (cents for USD), at least 1."},
    )
    currency = fields.String(
        required=True, validate=validate.OneOf(
            sorted(CURRENCIES), error="Not an ISO 4217 currency code (use upper case, e.g. USD)."),
        metadata={"description": "ISO 4217 code, upper case"})


class PointSchema(Schema):
    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(required=True, allow_nan=False,
                       validate=validate.Range(min=-180, max=180))


#: ``LocationInSchema``'s rule as OpenAPI says it: ``{lat, lon}`` or ``{query}``, never both
#: (one ``not``, so generated clients keep the object's type): not a query with a coordinate,
#: and not without a query and both coordinates.
ONE_LOCATION_FORM = {"anyOf": [
    {"required": ["query", "lat"]}, {"required": ["query", "lon"]},
    {"not": {"anyOf": [{"required": ["query"]}, {"required": ["lat", "lon"]}]}},
]}


class LocationInSchema(Schema):
    """Coordinates, or a place name for the geocoder: ``{lat, lon}`` or ``{query}``."""

    lat = fields.Float(allow_nan=False, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(allow_nan=False, validate=validate.Range(min=-180, max=180))
    query = text(200, min_len=1, metadata={"description": "A place name, e.g. 'Austin, TX'"})

    @validates_schema
    def _one_form(self, data: dict[str, Any], **_: Any) -> None:
        has_point = "lat" in data or "lon" in data
        if "query" in data and has_point:
            raise ValidationError("Give either lat and lon, or query — not both.", "query")
        if "query" not in data:
            missing = [k for k in ("lat", "lon") if k not in data]
            if missing:
                raise ValidationError({k: ["Missing data for required field."] for k in missing})


class ApproximatePointSchema(Schema):
    lat = fields.Float()
    lon = fields.Float()
    approximate = fields.Boolean(
        metadata={"description": "True when this is a ~1 km grid-cell centre, not the true point."}
    )


class EmptySchema(Schema):
    """For actions that take no body: anything sent is an unknown field, rejected."""


class ErrorDetailSchema(Schema):
    status = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "e.g. validation_error"})
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields",
                          metadata={"description": "Each bad input field, with its messages"})


class ErrorSchema(Schema):
    """The one error shape of every 4xx/5xx answer."""

    error = fields.Nested(ErrorDetailSchema, required=True)
