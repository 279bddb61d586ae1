"""A pytest plugin (conftest's ``pytest_plugins``): every event payload the suite sees must
validate against its published schema (``docs/events/schemas``, from
``marketplace.api.events_schema``).

Seen are: every notification stored in this process (an ``outbox.on_store`` hook, reading the
exact JSON text that goes out on the wire), every notification ``GET /api/v1/notifications``
answers (Flask's ``request_finished``), and every Socket.IO event a real client of the tests
receives (``socketio.Client``/``AsyncClient._handle_event``: notifications, replays and
live-only events, also from server processes the tests start). The first mismatch of each
event name is kept; at the end of the session each fails the run, naming the type and the
path inside the payload that does not fit."""

from __future__ import annotations

import json
import threading
from functools import cache
from typing import Any

import jsonschema
import pytest
import socketio
from flask import Flask, Response, request, request_finished

from marketplace.api import events_schema
from marketplace.notifications import outbox

API = "/api/v1"
#: event name -> the first mismatch seen, in words
MISMATCHES: dict[str, str] = {}
SEEN: dict[str, int] = {}
_lock = threading.Lock()


@cache
def _validator(event: str) -> Any:
    schema = events_schema.json_schema(event)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator
                                      .FORMAT_CHECKER)


def problem(event: str, payload: Any) -> str | None:
    """Why ``payload`` (a notification's envelope, or a live-only event's payload) does not
    fit the schema of ``event``; None when it does."""
    if event == "notification":
        event = payload.get("type") if isinstance(payload, dict) else None
        if event not in {t.value for t in events_schema.PAYLOADS}:
            return (f"notification of type {event!r}: no payload schema (add one to PAYLOADS "
                    "in marketplace/api/events_schema.py)")
    elif event not in events_schema.SIGNALS:
        return (f"live event {event!r}: no payload schema (add one to SIGNALS in "
                "marketplace/api/events_schema.py)")
    error = jsonschema.exceptions.best_match(_validator(event).iter_errors(payload))
    if error is None:
        return None
    path = "/".join(str(p) for p in error.absolute_path) or "(the payload)"
    return f"{event}: at {path}: {error.message[:300]}"


def observe(event: str, payload: Any) -> str | None:
    """Check one payload as the suite saw it; a mismatch is kept for the end of the run."""
    found = problem(event, payload)
    name = payload.get("type", event) if event == "notification" and isinstance(
        payload, dict) else event
    with _lock:
        SEEN[str(name)] = SEEN.get(str(name), 0) + 1
        if found is not None:
            MISMATCHES.setdefault(str(name), found)
    return found


def _stored(_session: Any, batch: list[tuple[int, Any]]) -> None:
    """outbox.on_store: each distinct payload of the batch once (a fan-out shares one)."""
    checked: set[tuple[str, int]] = set()
    for _uid, event in batch:
        key = (event["type"], id(event["data"]))
        if key in checked:
            continue
        checked.add(key)
        try:
            observe("notification", json.loads(event.wire))
        except Exception as exc:  # never break the storing transaction
            MISMATCHES.setdefault(key[0], f"{key[0]}: unreadable ({exc!r})")


def _answered(sender: Flask, response: Response, **_: Any) -> None:
    rule = request.url_rule
    if (rule is None or rule.rule != f"{API}/notifications" or request.method != "GET"
            or response.status_code != 200):
        return
    for item in (response.get_json(silent=True) or {}).get("items", []):
        observe("notification", item)


def _wrap_sync(original: Any) -> Any:
    def _handle_event(self: Any, namespace: Any, id: Any, data: Any) -> Any:
        if data and isinstance(data[0], str):
            observe(data[0], data[1] if len(data) > 1 else None)
        return original(self, namespace, id, data)
    return _handle_event


def _wrap_async(original: Any) -> Any:
    async def _handle_event(self: Any, namespace: Any, id: Any, data: Any) -> Any:
        if data and isinstance(data[0], str):
            observe(data[0], data[1] if len(data) > 1 else None)
        return await original(self, namespace, id, data)
    return _handle_event


def pytest_configure(config: pytest.Config) -> None:
    outbox.on_store(_stored)
    request_finished.connect(_answered)
    if not getattr(socketio.Client, "_events_observed", False):
        socketio.Client._handle_event = _wrap_sync(socketio.Client._handle_event)
        socketio.AsyncClient._handle_event = _wrap_async(socketio.AsyncClient._handle_event)
        socketio.Client._events_observed = True


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not MISMATCHES:
        return
    text = ("Event payloads that do not fit their schema (marketplace/api/events_schema.py, "
            "docs/events/schemas/):\n  " + "\n  ".join(MISMATCHES[k] for k in sorted(MISMATCHES)))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text, red=True)
    else:
        print(text)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
