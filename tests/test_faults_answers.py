"""What a request gets when a service it needs is away (in-process; the same with real server
processes and real outages: tests/test_faults_services.py): a database that cannot be reached
is a 503 with Retry-After -- the JSON error under /api/, a page that needs no database
elsewhere -- while a bug is still a 500; /healthz asks nothing, /readyz asks the database and
Redis."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import error_of, need_data
from flask import Flask
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError

from marketplace.api import needs as needs_api
from marketplace.errors import unavailable
from marketplace.web import shell


def refused(*args: Any, **kwargs: Any) -> Any:
    raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


def test_an_unreachable_database_is_503_with_retry_after(app: Flask, make_user: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    customer = make_user()
    monkeypatch.setattr(needs_api.services, "create", refused)
    for headers in ({}, {"Idempotency-Key": "k"}):
        r = customer.post("/api/v1/needs", json=need_data(), headers=headers)
        assert r.status_code == 503
        assert error_of(r)["code"] == "service_unavailable"
        # its own, not the rate limiter's window on this limited route
        assert r.headers["Retry-After"] == str(app.config["UNAVAILABLE_RETRY_AFTER"])


def test_a_page_is_a_503_page_that_needs_no_database(app: Flask, make_user: Any, auth: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    web = auth.sign_in(make_user())
    monkeypatch.setattr(shell.services, "resume_point", refused)
    page = web.get("/")
    assert page.status_code == 503
    assert page.headers["Retry-After"] == str(app.config["UNAVAILABLE_RETRY_AFTER"])
    assert page.mimetype == "text/html"
    assert "Back in a moment" in page.get_data(as_text=True)


def test_which_database_errors_mean_unavailable() -> None:
    assert unavailable(OperationalError("x", {}, Exception("server closed the connection")))
    lost = IntegrityError("x", {}, Exception("lost"))
    lost.connection_invalidated = True
    assert unavailable(lost)
    assert not unavailable(IntegrityError("x", {}, Exception("duplicate key")))
    assert not unavailable(DisconnectionError("not a DBAPI error"))
    assert not unavailable(ValueError("a bug"))


def test_healthz_asks_nothing_and_readyz_asks_the_database(app: Flask, client: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    r = client.get("/healthz")
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert "Set-Cookie" not in r.headers
    r = client.get("/readyz")
    assert (r.status_code, r.get_json()) == (200, {"status": "ready",
                                                   "checks": {"database": {"ok": True}}})
    assert "Set-Cookie" not in r.headers
    assert "/healthz" not in str(client.get("/api/v1/openapi.json").get_json()["paths"])

    from marketplace import app as app_module

    monkeypatch.setattr(app_module, "_ping_database", refused)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.get_json() == {"status": "unavailable", "checks": {
        "database": {"ok": False, "error": "OperationalError"}}}
    assert r.headers["Retry-After"] == str(app.config["UNAVAILABLE_RETRY_AFTER"])
    assert client.get("/healthz").status_code == 200


def test_readyz_asks_redis_when_there_is_one(app: Flask, client: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:9/0")  # nothing listens
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.get_json()["checks"] == {"database": {"ok": True},
                                      "redis": {"ok": False, "error": "ConnectionError"}}


def test_health_checks_answer_over_plain_http_when_https_is_on(tmp_path: Any) -> None:
    """A balancer probes the instance directly, over plain HTTP: no redirect to HTTPS."""
    from conftest import make_test_app

    app = make_test_app(f"sqlite:///{tmp_path / 'https.sqlite3'}", HTTPS=True,
                        SESSION_COOKIE_SECURE=True)
    client = app.test_client()
    assert client.get("/signin").status_code in (301, 302)  # every page is redirected
    r = client.get("/healthz")
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert client.get("/readyz").status_code == 200  # answered, not redirected
