"""Every error a page can hit — including the ones Werkzeug raises outside any view (routing,
the body size limit, CSRF) — is the styled error page (templates/error.html) with the right
status and headers; the same errors under /api/ are the one JSON error shape."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import error_of, make_test_app
from flask import Flask
from pages import dom, links

BIG_FORM = "name=" + "x" * (256 * 1024 + 1)


def assert_error_page(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "text/html"
    page = dom(response)
    assert "/static/app.css" in links(page)
    assert page.find("title").text().startswith(str(status)) and page.find(cls="card")
    return page.text()


PAGE_ERRORS = {
    "unknown-path": ("GET", "/no/such/page", {}, 404),
    "id-not-an-int": ("GET", "/needs/abc", {}, 404),
    "id-beyond-int32": ("GET", "/needs/99999999999", {}, 404),
    "wrong-method": ("DELETE", "/signin", {}, 405),
    "wrong-method-on-a-form": ("PUT", "/needs/new", {}, 405),
    "form-over-the-size-limit": ("POST", "/signin",
                                 {"data": BIG_FORM,
                                  "content_type": "application/x-www-form-urlencoded"}, 413),
    "announced-size-over-the-limit": ("POST", "/signin",
                                      {"data": "a=b",
                                       "content_type": "application/x-www-form-urlencoded",
                                       "environ_overrides": {"CONTENT_LENGTH": "999999999"}},
                                      413),
}


@pytest.mark.parametrize("case", list(PAGE_ERRORS))
def test_page_errors_are_the_styled_page(client: Any, case: str) -> None:
    method, path, kwargs, status = PAGE_ERRORS[case]
    response = client.open(path, method=method, headers={"Accept": "text/html"}, **kwargs)
    assert_error_page(response, status)
    if status == 405:
        assert "GET" in response.headers["Allow"], response.headers


@pytest.mark.parametrize("case", list(PAGE_ERRORS))
def test_the_same_errors_under_the_api_are_json(client: Any, case: str) -> None:
    method, path, kwargs, status = PAGE_ERRORS[case]
    api_path = {"/signin": "/api/v1/tokens", "/needs/new": "/api/v1/needs"}.get(
        path, "/api/v1" + path)
    if status == 405:
        method = "DELETE" if method == "PUT" else "PUT"
    kwargs = {**kwargs, "content_type": "application/json"} if "data" in kwargs else kwargs
    response = client.open(api_path, method=method, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert error_of(response)["status"] == status
    if status == 405:
        assert response.headers["Allow"]


def test_a_missing_csrf_token_is_the_styled_page(app: Flask) -> None:
    """CSRF protection runs before any view; its 400 is the page too (CSRF is off in the other
    tests, so this one turns it on)."""
    guarded = make_test_app(app.config["SQLALCHEMY_DATABASE_URI"], WTF_CSRF_ENABLED=True)
    response = guarded.test_client().post("/signin", data={"email": "a@b.c", "password": "x"})
    page = assert_error_page(response, 400)
    assert "CSRF" in page
