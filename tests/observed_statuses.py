"""A pytest plugin (conftest's ``pytest_plugins``): every status any test observes an API
operation answer must be documented for that operation in the OpenAPI document.

Each response the app finishes in this process (the test client, in-process clients) is
recorded as (method, url rule, status) from Flask's ``request_finished`` signal; at the end of
the session the recorded statuses are compared with the operation's documented ``responses``.
An undocumented one fails the session, naming it. Statuses that are not an operation's
(405: the method has no operation; 500: a bug the test shows anyway; the server's own 414/431)
are left out, as are the document and its page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, Response, request, request_finished

API = "/api/v1"
NOT_AN_OPERATIONS_STATUS = {405, 414, 431, 500}
OWN_ROUTES = {f"{API}/openapi.json", f"{API}/docs"}

#: (METHOD, rule) -> statuses seen
OBSERVED: dict[tuple[str, str], set[int]] = {}


def _record(sender: Flask, response: Response, **_: Any) -> None:
    rule = request.url_rule
    if rule is None or not rule.rule.startswith(f"{API}/") or rule.rule in OWN_ROUTES:
        return
    OBSERVED.setdefault((request.method, rule.rule), set()).add(response.status_code)


def pytest_configure(config: pytest.Config) -> None:
    request_finished.connect(_record)


def undocumented(doc: dict[str, Any]) -> list[str]:
    """``"METHOD /path: status"`` for each status observed but not documented."""
    missing = []
    for (method, rule), statuses in sorted(OBSERVED.items()):
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        op = doc["paths"].get(path, {}).get(method.lower())
        if op is None:  # HEAD, OPTIONS: no operation of their own
            continue
        documented = {int(code) for code in op["responses"] if code.isdigit()}
        for status in sorted(statuses - documented - NOT_AN_OPERATIONS_STATUS):
            missing.append(f"{method} {path} ({op.get('operationId')}): {status}")
    return missing


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not OBSERVED:
        return
    from conftest import make_test_app

    app = make_test_app("sqlite://")
    with app.app_context():
        doc = app.test_client().get(f"{API}/openapi.json").get_json()
    missing = undocumented(doc)
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = ("Statuses tests observed that the OpenAPI document does not list for the "
                "operation (marketplace/api/document.py):\n  " + "\n  ".join(missing))
        if reporter is not None:
            reporter.write_line(text, red=True)
        else:
            print(text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
