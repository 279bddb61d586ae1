"""What every JSON blueprint shares: an argument parser that refuses a body that is not JSON
(415), treats absurdly nested JSON as malformed (400) rather than letting the decoder's
RecursionError become a 500, and loads with one instance of each schema class."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser, is_json_request

from marketplace.api.document import PARAMETERS
from marketplace.api.idempotency import idempotent
from marketplace.errors import UnsupportedMediaType
from marketplace.extensions import attempts_limited, limited

JSON = "application/json"


class Parser(FlaskParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type[ma.Schema], ma.Schema] = {}

    def _get_schema(self, argmap: Any, req: Any) -> ma.Schema:
        """One instance per schema class, made at its first request: webargs would build one
        per request (the declared fields deep-copied each time: ~5% of a small POST). A
        marshmallow schema keeps no state between loads, so one instance serves them all."""
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: Any) -> Any:
        # webargs reads a body of another media type as no body at all, so a JSON body sent as
        # text/plain would be silently ignored; only a request with neither body nor
        # Content-Type is "no body" (the bodyless actions).
        if not is_json_request(req) and (req.mimetype or req.get_data(cache=True)):
            sent = f"got {req.mimetype}" if req.mimetype else "no Content-Type was sent"
            raise UnsupportedMediaType(
                f"The body must be JSON, sent with Content-Type: {JSON} ({sent}).",
                {"Content-Type": [f"Must be {JSON}."]})
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            error = json.JSONDecodeError("JSON nested too deeply", "", 0)
            return self._handle_invalid_json_error(error, req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        """flask-smorest's decorator; a JSON body's operation also documents the 415."""
        decorate = super().arguments(schema, location=location, **kwargs)
        if location != "json":
            return decorate

        def decorator(func: Any) -> Any:
            view = decorate(func)
            view._apidoc["arguments"]["responses"][415] = "UNSUPPORTED_MEDIA_TYPE"
            return view

        return decorator

    def limited(self, setting: str) -> Any:
        """``extensions.limited`` for a JSON route, with its 429 in the OpenAPI document."""

        def decorator(func: Any) -> Any:
            return self.alt_response(429, response="TOO_MANY_REQUESTS")(limited(setting)(func))

        return decorator

    def attempts_limited(self, setting: str) -> Any:
        """``extensions.attempts_limited`` (per account tried and per IP) for a JSON route."""

        def decorator(func: Any) -> Any:
            return self.alt_response(429, response="TOO_MANY_REQUESTS")(
                attempts_limited(setting)(func))

        return decorator

    def idempotent(self, func: Any) -> Any:
        """``idempotency.idempotent`` (inside the authentication, outside argument parsing),
        with its ``Idempotency-Key`` header in the OpenAPI document (api/document.py adds its
        409, 422 and ``Idempotent-Replayed``)."""
        return self.doc(parameters=[PARAMETERS["Idempotency-Key"]])(
            idempotent(func))
