"""Security headers on every response: a Content-Security-Policy without 'unsafe-inline' (the one
inline script carries the request's nonce), no framing, nosniff, a Referrer-Policy, HSTS and
the HTTPS redirect when HTTPS is configured, no-store on everything but static files, and the
cookie flags. The browser half — pages run under that policy without a violation — is in
``test_e2e_headers.py``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, make_test_app
from flask import Flask
from flask.testing import FlaskClient

PAGES = ["/", "/signin", "/signup", "/api/v1/docs", "/no-such-page"]
API = ["/api/v1/openapi.json", "/api/v1/me", "/api/v1/categories", "/api/v1/no-such-thing"]


def csp(response: Any) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:])
            for part in (p.strip() for p in policy.split(";")) if part}


@pytest.mark.parametrize("path", PAGES + API)
def test_every_response_carries_the_policy_and_no_store(client: FlaskClient, path: str) -> None:
    r = client.get(path)
    policy = csp(r)
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["style-src"] == "'self'"
    assert re.fullmatch(r"'self' 'nonce-[A-Za-z0-9_-]{16,}'", policy["script-src"])
    assert "unsafe" not in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert r.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in r.headers  # plain HTTP is not configured as HTTPS


def test_static_files_may_be_cached(client: FlaskClient) -> None:
    r = client.get("/static/app.css")
    r.close()
    assert r.status_code == 200
    assert "no-store" not in r.headers.get("Cache-Control", "")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_each_request_has_its_own_nonce_and_the_inline_script_carries_it(
        client: FlaskClient) -> None:
    first, second = client.get("/api/v1/docs"), client.get("/api/v1/docs")
    nonces = [re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1)
              for r in (first, second)]
    assert nonces[0] != nonces[1]
    scripts = re.findall(r"<script([^>]*)>", first.get_data(as_text=True))
    inline = [attrs for attrs in scripts if "src=" not in attrs]
    assert inline == [f' nonce="{nonces[0]}"']


def test_the_new_token_page_is_not_stored(make_user: Any, auth: Any) -> None:
    client = auth.sign_in(make_user())
    r = client.post("/account/tokens", data={"name": "laptop"})
    assert r.status_code == 200
    assert "mkt_" in r.get_data(as_text=True) or "token" in r.get_data(as_text=True)
    assert r.headers["Cache-Control"] == "no-store"


TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_needs_unsafe_inline(template: Path) -> None:
    """What the policy would block: style attributes, <style> blocks, on* handlers, javascript:
    links, and inline scripts without the nonce."""
    text = template.read_text()
    assert not re.search(r"\sstyle\s*=", text)
    assert "<style" not in text
    assert not re.search(r"\son[a-z]+\s*=", text)
    assert "javascript:" not in text
    for attrs in re.findall(r"<script([^>]*)>", text):
        assert "src=" in attrs or 'nonce="{{ csp_nonce() }}"' in attrs, attrs


@pytest.fixture(scope="module")
def https_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    from conftest import migrated_sqlite

    url, _ = migrated_sqlite(tmp_path_factory, "https")
    return make_test_app(url, HTTPS=True, SESSION_COOKIE_SECURE=True,
                         REMEMBER_COOKIE_SECURE=True)


def test_with_https_plain_http_is_redirected_and_hsts_sent(https_app: Flask) -> None:
    client = https_app.test_client()
    r = client.get("/signin?next=/needs")
    assert r.status_code in (301, 302)
    assert r.headers["Location"] == "https://localhost/signin?next=/needs"
    secure = client.get("/signin", base_url="https://localhost")
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31556926")
    proxied = client.get("/signin", headers={"X-Forwarded-Proto": "https"})
    assert proxied.status_code == 200


def cookie_flags(response: Any) -> dict[str, str]:
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0]
        found[name] = header
    return found


@pytest.mark.parametrize("secure", [False, True])
def test_every_cookie_is_httponly_and_lax_and_secure_when_https(
        secure: bool, tmp_path_factory: pytest.TempPathFactory) -> None:
    from conftest import migrated_sqlite

    url, _ = migrated_sqlite(tmp_path_factory, f"cookies{int(secure)}")
    app = make_test_app(url, **({"HTTPS": True, "SESSION_COOKIE_SECURE": True,
                                 "REMEMBER_COOKIE_SECURE": True} if secure else {}))
    base = "https://localhost" if secure else "http://localhost"
    client = app.test_client()
    r = client.post("/signup", base_url=base, data={
        "name": "Cookie Person", "email": f"cookie{int(secure)}@example.org",
        "password": "long-enough-password", "remember": "1"})
    assert r.status_code == 200, r.get_data(as_text=True)  # "check your mail"
    r = client.post("/signin", base_url=base, data={
        "email": f"cookie{int(secure)}@example.org", "password": "long-enough-password",
        "remember": "1"})
    assert r.status_code == 302, r.get_data(as_text=True)
    cookies = cookie_flags(r)
    assert {"session", "remember_token"} <= cookies.keys()
    for name, header in cookies.items():
        assert "HttpOnly" in header, name
        assert "SameSite=Lax" in header, name
        assert ("; Secure" in header) is secure, name
