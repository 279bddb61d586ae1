"""Typed events: a JSON Schema for every notification (the whole envelope, ``type`` a const,
``data`` dumped by the same marshmallow schemas the payloads are built with) and for every
live-only Socket.IO event, and the AsyncAPI 3.0 document of the Socket.IO stream.

Both are generated from the marshmallow schemas below and committed under ``docs/events/``
(``python -m marketplace.api.events_schema --write``; a test holds the committed files equal to
what this module generates); the API serves the same text at ``/api/v1/events/...``.

A new notification type: write a marshmallow schema for its ``data`` (reuse the API's output
schemas where the payload is built from them) and add one line to ``PAYLOADS``; a new
live-only event: one line to ``SIGNALS``. Then run the command above."""

from __future__ import annotations

import argparse
import copy
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields, validate

from marketplace.needs.schemas import STATUSES, SUMMARY_FIELDS, NeedOutSchema
from marketplace.notifications.types import NotificationType
from marketplace.offers.schemas import OfferOutSchema
from marketplace.schemas import Schema

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"  # what AsyncAPI 3.0 schemas speak
OPTIONAL = "x-optional"  # a field's metadata: may be left out (every other field is required)


def _need(**kwargs: Any) -> fields.Nested:
    return fields.Nested(NeedOutSchema(only=SUMMARY_FIELDS), required=True, metadata={
        "description": "The need's published fields (needs.presenters.summary)."}, **kwargs)


# --- the payloads (``data``) of the notifications ---------------------------------------------


class NeedMatchedData(Schema):
    need = fields.Nested(NeedOutSchema(only=(*SUMMARY_FIELDS, "direct")), required=True)


class OfferData(Schema):
    """offer.received, offer.revised, offer.withdrawn (``offers.presenters.event``)."""
    need_id = fields.Integer(required=True)
    offer = fields.Nested(OfferOutSchema, required=True, metadata={
        "description": "The offer as the customer sees it, with the provider's reputation."})


class OfferAcceptedData(Schema):
    offer_id = fields.Integer(required=True)
    need = _need()


class OfferDeclinedData(Schema):
    offer_id = fields.Integer(required=True)
    need = _need()
    reason = fields.String(required=True, metadata={"description": "Why, in words to show."})


class NeedCancelledData(Schema):
    need = _need()
    cancelled_by = fields.String(required=True, validate=validate.OneOf(["customer", "provider"]))
    reason = fields.String(required=True, allow_none=True, metadata={
        "description": "The canceller's words (masked for a provider the customer did not "
                       "choose); null when none were given."})


class NeedData(Schema):
    """need.expired, need.completed, need.updated (the need as it is after the edit)."""
    need = _need()


class MessageReceivedData(Schema):
    offer_id = fields.Integer(required=True)
    need_id = fields.Integer(required=True)
    message_id = fields.Integer(required=True)
    from_ = fields.String(data_key="from", required=True,
                          validate=validate.OneOf(["customer", "provider"]))
    sender_name = fields.String(required=True)
    body = fields.String(required=True, metadata={
        "description": "To a provider, contact details masked until the offer is accepted."})
    created_at = fields.AwareDateTime(required=True)


class RatingReceivedData(Schema):
    rating_id = fields.Integer(required=True)
    need_id = fields.Integer(required=True)
    title = fields.String(required=True)
    stars = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    comment = fields.String(required=True)


class RatingRepliedData(Schema):
    rating_id = fields.Integer(required=True)
    need_id = fields.Integer(required=True)
    provider = fields.String(required=True, metadata={"description": "The provider's handle."})
    reply = fields.String(required=True)


class WebhookDisabledData(Schema):
    webhook_id = fields.Integer(required=True)
    url = fields.String(required=True)
    failed_deliveries = fields.Integer(required=True, metadata={
        "description": "Deliveries in a row that failed every attempt (WEBHOOKS_DISABLE_AFTER)."})
    last_delivery_id = fields.Integer(required=True)
    last_status = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The HTTP status of the last attempt; null when it got no answer."})
    last_error = fields.String(required=True, metadata={
        "description": "Why the last attempt failed: `HTTP <status>`, or the network fault."})


#: One line per type: the marshmallow schema of its ``data``.
PAYLOADS: dict[NotificationType, type[Schema]] = {
    NotificationType.NEED_MATCHED: NeedMatchedData,
    NotificationType.OFFER_RECEIVED: OfferData,
    NotificationType.OFFER_REVISED: OfferData,
    NotificationType.OFFER_WITHDRAWN: OfferData,
    NotificationType.OFFER_ACCEPTED: OfferAcceptedData,
    NotificationType.OFFER_DECLINED: OfferDeclinedData,
    NotificationType.NEED_CANCELLED: NeedCancelledData,
    NotificationType.NEED_EXPIRED: NeedData,
    NotificationType.NEED_COMPLETED: NeedData,
    NotificationType.NEED_UPDATED: NeedData,
    NotificationType.MESSAGE_RECEIVED: MessageReceivedData,
    NotificationType.RATING_RECEIVED: RatingReceivedData,
    NotificationType.RATING_REPLIED: RatingRepliedData,
    NotificationType.WEBHOOK_DISABLED: WebhookDisabledData,
}


# --- live-only events -------------------------------------------------------------------------


class EmptyPayload(Schema):
    pass


class NeedClosedSignal(Schema):
    need_id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(
        [s for s in STATUSES if s != "open"]))


class ReplayPosition(Schema):
    """replay.more, replay.done: ``last_seq`` when catching up by seq, ``last_id`` by id."""
    last_seq = fields.Integer(metadata={OPTIONAL: True})
    last_id = fields.Integer(metadata={OPTIONAL: True})


#: One line per live-only Socket.IO event: the marshmallow schema of its payload.
SIGNALS: dict[str, type[Schema]] = {
    "account.erased": EmptyPayload,
    "resync": EmptyPayload,
    "need.closed": NeedClosedSignal,
    "replay.more": ReplayPosition,
    "replay.done": ReplayPosition,
}

SIGNAL_DESCRIPTIONS = {
    "account.erased": "To the erased user's own connections, just before the server closes them.",
    "resync": "The server could not deliver something live: emit `replay` with your last "
              "contiguous seq.",
    "need.closed": "To every provider the need is posted to: it no longer takes offers.",
    "replay.more": "A catch-up page ended and more follow: emit `replay` to get them.",
    "replay.done": "Caught up: the connection is live from here on.",
}


# --- generation -------------------------------------------------------------------------------


def _name(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.replace("_", ".").split("."))


def _envelope(kind: NotificationType) -> type[Schema]:
    return Schema.from_dict({
        "id": fields.Integer(required=True, metadata={"description": "Global, in commit order."}),
        "seq": fields.Integer(required=True, metadata={
            "description": "The recipient's own count: 1, 2, 3, ... with no holes."}),
        "type": fields.String(required=True, metadata={"const": kind.value}),
        "created_at": fields.AwareDateTime(required=True),
        "text": fields.String(required=True, metadata={
            "description": "What it says to its recipient, in words to show."}),
        "read_at": fields.AwareDateTime(allow_none=True, metadata={
            OPTIONAL: True, "description": "Only in GET /api/v1/notifications."}),
        "data": fields.Nested(PAYLOADS[kind], required=True),
    }, name=f"{_name(kind.value)}Notification")


def _close(node: Any) -> None:
    """Every object property is required unless marked optional: payloads are dumps, and a
    dump writes every declared field."""
    if isinstance(node, dict):
        props = node.get("properties")
        if node.get("type") == "object" and isinstance(props, dict):
            node["required"] = [k for k, v in props.items() if not v.pop(OPTIONAL, False)]
            if not node["required"]:
                del node["required"]
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def _draft7(node: Any) -> Any:
    """OpenAPI 3.1's ``type: [t, "null"]`` is draft-07 as it is; only refs move."""
    if isinstance(node, dict):
        return {k: (v.replace("#/components/schemas/", "#/definitions/") if k == "$ref" else
                    _draft7(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_draft7(v) for v in node]
    return node


@cache
def components() -> dict[str, dict[str, Any]]:
    """Every schema by name, refs as ``#/components/schemas/<name>``: one per notification
    type (``<Type>Notification``), one per live-only event (``<Event>Signal``) and what they
    nest."""
    spec = APISpec("events", "1", "3.1.0", plugins=[MarshmallowPlugin()])
    spec.components.schema("NeedSummary", schema=NeedOutSchema(only=SUMMARY_FIELDS))
    spec.components.schema("MatchedNeed", schema=NeedOutSchema(only=(*SUMMARY_FIELDS, "direct")))
    for kind in NotificationType:
        if kind in PAYLOADS:
            spec.components.schema(f"{_name(kind.value)}Notification", schema=_envelope(kind))
    for event in SIGNALS:
        # a class of its own per event: two events may share a payload schema
        own = type(f"{_name(event)}Signal", (SIGNALS[event],), {})
        spec.components.schema(f"{_name(event)}Signal", schema=own)
    schemas = copy.deepcopy(spec.to_dict()["components"]["schemas"])
    for kind in PAYLOADS:
        prop = schemas[f"{_name(kind.value)}Notification"]["properties"]["type"]
        prop["const"] = kind.value
    _close(schemas)
    for name in ("ReplayMoreSignal", "ReplayDoneSignal"):
        schemas[name].update(minProperties=1, maxProperties=1)
    return schemas


def _closure(name: str, schemas: dict[str, Any]) -> dict[str, Any]:
    found, todo = {}, [name]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found[current] = schemas[current]
        text = json.dumps(schemas[current])
        todo += [ref.split('"')[0] for ref in text.split('"$ref": "#/components/schemas/')[1:]]
    return found


def json_schema(event: str) -> dict[str, Any]:
    """The JSON Schema (draft-07) of one notification type's envelope or live-only event."""
    schemas = components()
    name = (f"{_name(event)}Notification" if event in {k.value for k in PAYLOADS}
            else f"{_name(event)}Signal")
    if name not in schemas:
        raise KeyError(event)
    closure = _closure(name, schemas)
    root = _draft7(closure.pop(name))
    kind = "notification" if name.endswith("Notification") else "live-only event"
    doc: dict[str, Any] = {"$schema": SCHEMA_DIALECT, "$id": f"{event}.json",
                           "title": f"{event} ({kind})", **root}
    if closure:
        doc["definitions"] = {k: _draft7(v) for k, v in sorted(closure.items())}
    return doc


def event_names() -> list[str]:
    """Every type and live-only event that has a schema, in the order they are listed."""
    return [k.value for k in PAYLOADS] + list(SIGNALS)


@cache
def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the Socket.IO stream (server to client)."""
    schemas = components()
    messages: dict[str, Any] = {}
    for kind in PAYLOADS:
        messages[_name(kind.value)] = {
            "name": "notification", "title": kind.value,
            "summary": f"The `notification` event of type `{kind.value}` (stored; replayed).",
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{_name(kind.value)}Notification"}}
    for event in SIGNALS:
        messages[f"{_name(event)}Signal"] = {
            "name": event, "title": event, "summary": SIGNAL_DESCRIPTIONS.get(event, event),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{_name(event)}Signal"}}
    refs = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Marketplace live events",
            "version": "1",
            "description": "The Socket.IO stream of one signed-in user (docs/events.md): every "
                           "notification arrives as the event `notification` (its `type` says "
                           "which), and live-only events under their own names. Connect with "
                           "`auth={\"token\": ..., \"last_seq\": S}` to catch up first.",
        },
        "servers": {"default": {"host": "localhost:5000", "protocol": "ws", "pathname":
                                "/socket.io", "description": "Socket.IO (Engine.IO v4) on the "
                                "API's host; long-polling first, then WebSocket."}},
        "channels": {"user": {
            "address": "user:{user_id}",
            "description": "The user's private room; the server puts each authenticated "
                           "connection in it. Clients never choose rooms.",
            "parameters": {"user_id": {"description": "The signed-in user."}},
            "messages": refs,
        }},
        "operations": {
            "receiveNotifications": {
                "action": "send", "channel": {"$ref": "#/channels/user"},
                "summary": "Notifications (stored, replayed on reconnect).",
                "messages": [{"$ref": f"#/channels/user/messages/{_name(k.value)}"}
                             for k in PAYLOADS]},
            "receiveSignals": {
                "action": "send", "channel": {"$ref": "#/channels/user"},
                "summary": "Live-only events (never stored or replayed).",
                "messages": [{"$ref": f"#/channels/user/messages/{_name(e)}Signal"}
                             for e in SIGNALS]},
        },
        "components": {"schemas": schemas, "messages": messages},
    }


def asyncapi_yaml() -> str:
    return yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True, width=100)


def schema_text(event: str) -> str:
    return json.dumps(json_schema(event), indent=2, ensure_ascii=False) + "\n"


def files() -> dict[str, str]:
    """Relative path under ``docs/events/`` -> the text that belongs there."""
    out = {"asyncapi.yaml": asyncapi_yaml()}
    out.update({f"schemas/{event}.json": schema_text(event) for event in event_names()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write them under {DOCS}")
    args = parser.parse_args(argv)
    wanted = files()
    if not args.write:
        stale = [p for p, text in wanted.items()
                 if not (DOCS / p).exists() or (DOCS / p).read_text() != text]
        for path in stale:
            print(f"out of date: docs/events/{path}")
        return 1 if stale else 0
    (DOCS / "schemas").mkdir(parents=True, exist_ok=True)
    for old in (DOCS / "schemas").glob("*.json"):
        if f"schemas/{old.name}" not in wanted:
            old.unlink()
    for path, text in wanted.items():
        (DOCS / path).write_text(text)
    print(f"wrote {len(wanted)} files under docs/events/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
