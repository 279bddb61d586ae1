"""Schema pieces shared by several features (money, points, timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow
from marshmallow import ValidationError, fields, validate, validates_schema
from marshmallow.utils import get_value

from marketplace.money import CURRENCIES, MAX_AMOUNT


class Schema(marshmallow.Schema):
    """Every schema of the app. A field's value is read straight off an object by name, which
    is what marshmallow ends up doing for one. marshmallow first asks ``hasattr(obj,
    "__getitem__")`` of every value of every object it dumps, and for a view that passes
    unknown names on to what it wraps (``NeedView``) that question costs a failed attribute
    lookup each time; the type is asked here instead. Dicts, sequences and dotted names go
    through marshmallow's own ``get_value``, unchanged."""

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if "." in attr or hasattr(type(obj), "__getitem__"):
            return get_value(obj, attr, default)
        return getattr(obj, attr, default)


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
