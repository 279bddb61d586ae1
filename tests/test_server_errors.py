"""Requests the WSGI server refuses before the app runs (a URL over 8 KB, a header too large,
too many headers, a malformed request line, a bad Content-Length or chunked body) still answer
in the app's one error shape: the JSON error under /api/, the styled error page elsewhere. Both
real servers are tested, each in its own process: ``python -m marketplace.serve`` and gunicorn
with the production gevent-websocket worker (gunicorn.conf.py). Requests go over raw sockets,
since a well-behaved HTTP client cannot send most of them."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import flask_migrate
import pytest
import requests
from conftest import make_test_app
from live import GUNICORN, SERVE, server

from marketplace.extensions import db


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(base: str, raw: bytes) -> Answer:
    """Send raw bytes and read one response (headers, then Content-Length bytes of body)."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a full response: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            assert chunk, "connection closed inside the body"
            body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


@pytest.fixture(scope="module", params=["serve", "gunicorn"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('server-errors') / 'db.sqlite3'}"
    app = make_test_app(url)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    command = SERVE if request.param == "serve" else GUNICORN
    with server(url, command=command, EXPIRY_INTERVAL_SECONDS="3600") as base:
        yield base


def assert_json_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    body = answer.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == status and body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert int(answer.headers["content-length"]) == len(answer.body)
    return body["error"]


def assert_error_page(answer: Answer, status: int) -> None:
    assert answer.status == status, answer
    assert answer.headers.get("content-type", "").startswith("text/html"), answer.headers
    page = answer.body.decode()
    assert "/static/app.css" in page and f"<title>{status}" in page, page[:300]


LONG = "x" * 9000
BIG_HEADER = b"X-Big: " + b"y" * 70_000 + b"\r\n"
MANY_HEADERS = b"".join(b"X-H%d: v\r\n" % i for i in range(150))


def get(path: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n".encode() + extra + b"\r\n"


API_CASES = {
    "url-over-8kb": (get(f"/api/v1/categories?q={LONG}"), 414, "uri_too_long"),
    "path-over-8kb": (get(f"/api/v1/{LONG}"), 414, "uri_too_long"),
    "header-line-too-large": (get("/api/v1/categories", BIG_HEADER), 431,
                              "request_header_fields_too_large"),
    "too-many-headers": (get("/api/v1/categories", MANY_HEADERS), 431,
                         "request_header_fields_too_large"),
    "unknown-http-version": (b"GET /api/v1/categories HTTP/7.0\r\nHost: t\r\n\r\n", 400,
                             "bad_request"),
    "bad-content-length": (b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: "
                           b"application/json\r\nContent-Length: abc\r\n\r\n{}", 400,
                           "bad_request"),
    "bad-chunk-size": (b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: "
                       b"application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
                       400, "bad_request"),
}
PAGE_CASES = {
    "url-over-8kb": (get(f"/login?next={LONG}"), 414),
    "header-line-too-large": (get("/login", BIG_HEADER), 431),
    "unknown-http-version": (b"GET /login HTTP/7.0\r\nHost: t\r\n\r\n", 400),
    "garbage-request-line": (b"NONSENSE\r\n\r\n", 400),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_api_requests_the_server_refuses_get_the_json_error(live: str, case: str) -> None:
    raw, status, code = API_CASES[case]
    assert_json_error(exchange(live, raw), status, code)


@pytest.mark.parametrize("case", list(PAGE_CASES))
def test_page_requests_the_server_refuses_get_the_error_page(live: str, case: str) -> None:
    raw, status = PAGE_CASES[case]
    assert_error_page(exchange(live, raw), status)


def test_the_server_still_serves_after_refusing(live: str) -> None:
    """A refusal closes only its own connection; the next request is served normally."""
    assert exchange(live, get(f"/api/v1/{LONG}")).status == 414
    response = requests.get(live + "/api/v1/categories", timeout=10)
    assert response.status_code == 200 and len(response.json()["items"]) == 20


def test_just_under_the_limit_reaches_the_app(live: str) -> None:
    """The limit is the server's 8 KB request line: a URL just under it is routed normally."""
    path = "/api/v1/categories?q=" + "x" * (8192 - 200)
    answer = exchange(live, get(path))
    assert answer.status == 200, answer


def test_the_app_asks_once_per_function_whether_to_run_it_as_a_coroutine(app: Any) -> None:
    """``App.ensure_sync`` answers as Flask's (a plain function runs as it is; this app has no
    coroutine views, and Flask would need its 'async' extra for one), remembered for the
    app's own functions, and holds no more than ``SYNC_MEMO`` of the functions made for one
    request each."""

    def now() -> str:
        return "ran"

    memo = app._as_sync
    assert app.ensure_sync(now) is now and memo[now] is now
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert app.view_functions["healthz"] in memo  # the view and the hooks it ran
    assert all(f in memo for f in app.before_request_funcs[None])
    for _ in range(app.SYNC_MEMO + 50):
        app.ensure_sync(lambda: None)  # a closure per request, as after_this_request makes
    assert len(memo) == app.SYNC_MEMO
    assert app.ensure_sync(now) is now
    assert client.get("/healthz").status_code == 200
