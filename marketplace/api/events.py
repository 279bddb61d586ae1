"""The typed events, read-only: the AsyncAPI document of the Socket.IO stream and one JSON
Schema per notification type and live-only event (``events_schema``; committed under
``docs/events/`` too)."""

from __future__ import annotations

from flask import Response

from marketplace.api import events_schema
from marketplace.api.base import Blueprint
from marketplace.errors import NotFound

blp = Blueprint("events_api", __name__, url_prefix="/api/v1", description="Events")


@blp.route("/events/asyncapi.yaml", methods=["GET"])
@blp.doc(security=[], responses={"200": {
    "description": "The AsyncAPI 3.0 document (YAML).",
    "content": {"application/yaml": {"schema": {"type": "object"}}}}})
def asyncapi() -> Response:
    """The AsyncAPI 3.0 document of the live events (the Socket.IO stream)."""
    return Response(events_schema.asyncapi_yaml(), mimetype="application/yaml")


@blp.route("/events/schemas/<event>.json", methods=["GET"])
@blp.doc(security=[], parameters=[{
    "in": "path", "name": "event", "required": True,
    "schema": {"type": "string", "enum": events_schema.event_names()},
    "description": "A notification type (`offer.received`) or a live-only event (`resync`)."}],
    responses={"200": {
        "description": "Its JSON Schema (draft-07): a notification's whole envelope, or a "
                       "live-only event's payload.",
        "content": {"application/schema+json": {"schema": {"type": "object"}}}}})
def event_schema(event: str) -> Response:
    """The JSON Schema of one notification type or live-only event."""
    if event not in events_schema.event_names():
        raise NotFound(f"No event type {event!r}.", {"event": ["Not an event type."]})
    return Response(events_schema.schema_text(event), mimetype="application/schema+json")
