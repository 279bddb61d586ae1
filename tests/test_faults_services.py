"""A real server process whose PostgreSQL or Redis goes away and comes back (a TCP proxy the
test cuts, tests/tcp_proxy.py; the machine's shared servers are never touched).

PostgreSQL away: every request that needs it is a 503 with Retry-After -- the JSON error under
/api/, a page of its own elsewhere -- /readyz says the database failed, /healthz still answers;
back: the very next requests succeed, without restarting the app. Redis away: requests still
succeed and their notifications are stored; /readyz says Redis failed until it is back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from conftest import AUSTIN, migrated, need_data, throwaway_pg_database
from live import Api, server
from tcp_proxy import TcpProxy, tcp_proxy

RETRY_AFTER = "3"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with throwaway_pg_database("mkt_faults_svc") as url:
        migrated(url)
        yield url


def through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def upstream(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}@example.com"


def titles(pg_url: str, customer: Api) -> list[str]:
    with psycopg.connect(pg_url) as conn:
        return [row[0] for row in conn.execute(
            "SELECT title FROM needs WHERE customer_id = %s ORDER BY id", (customer.user["id"],))]


def keyed_post(customer: Api, body: dict[str, Any], key: str) -> requests.Response:
    return requests.post(customer.base + "/api/v1/needs", json=body, timeout=10, headers={
        "Authorization": f"Bearer {customer.token}", "Idempotency-Key": key})


def catering_in_austin(pro: Api) -> None:
    """Make ``pro`` a provider that a catering need in Austin (need_data) matches."""
    r = pro.call("PUT", "/me/provider", json={
        "handle": f"pro-{uuid.uuid4().hex[:6]}", "display_name": "Pro", "bio": "",
        "categories": ["catering"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 25, "active": True})
    assert r.status_code == 200, r.text


def readiness(base: str) -> tuple[int, dict[str, Any]]:
    r = requests.get(base + "/readyz", timeout=10)
    return r.status_code, r.json()


def assert_unavailable_json(r: requests.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == RETRY_AFTER
    assert r.json() == {"error": {"status": 503, "code": "service_unavailable",
                                  "message": r.json()["error"]["message"]}}


def test_postgresql_away_is_503_with_retry_after_and_the_app_recovers(pg_url: str) -> None:
    with tcp_proxy(*upstream(pg_url)) as proxy, server(
            through(pg_url, proxy), UNAVAILABLE_RETRY_AFTER=RETRY_AFTER,
            DATABASE_CONNECT_TIMEOUT="2") as base:
        customer = Api(base, unique("db-away"))
        pages = customer.sign_in_to_pages()
        assert customer.call("POST", "/needs", json=need_data(title="Before")).status_code == 201
        assert readiness(base) == (200, {"status": "ready", "checks": {"database": {"ok": True}}})

        proxy.cut()
        assert_unavailable_json(customer.call("POST", "/needs", json=need_data(title="Cut")))
        assert_unavailable_json(keyed_post(customer, need_data(title="After"), "while-away"))
        assert_unavailable_json(customer.call("GET", "/me"))
        page = pages.get(base + "/", timeout=10)  # a signed-in page reads the account
        assert page.status_code == 503
        assert page.headers["Retry-After"] == RETRY_AFTER
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Back in a moment" in page.text
        # a page that needs no database still works
        assert requests.get(base + "/signin", timeout=10).status_code == 200
        status, body = readiness(base)
        assert status == 503 and body["checks"]["database"]["ok"] is False
        assert body["status"] == "unavailable"
        health = requests.get(base + "/healthz", timeout=10)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})

        proxy.restore()  # "PostgreSQL is back": the same app process, no restart
        after = keyed_post(customer, need_data(title="After"), "while-away")
        assert after.status_code == 201, after.text  # its key was not left held
        assert "Idempotent-Replayed" not in after.headers
        assert customer.call("GET", "/me").status_code == 200
        assert pages.get(base + "/", timeout=10).status_code == 200
        assert readiness(base)[0] == 200
    assert titles(pg_url, customer) == ["Before", "After"]


def test_redis_away_requests_still_succeed_and_readyz_says_so(pg_url: str,
                                                             redis_url: str) -> None:
    redis = urlsplit(redis_url)
    with tcp_proxy(redis.hostname or "127.0.0.1", redis.port or 6379) as proxy, server(
            pg_url, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0",
            SOCKETIO_CHANNEL=f"faults-{uuid.uuid4().hex[:8]}",
            UNAVAILABLE_RETRY_AFTER=RETRY_AFTER) as base:
        customer, pro = Api(base, unique("redis-c")), Api(base, unique("redis-p"))
        catering_in_austin(pro)
        status, body = readiness(base)
        assert (status, body["checks"]) == (200, {"database": {"ok": True}, "redis": {"ok": True}})

        proxy.cut()
        posted = customer.call("POST", "/needs", json=need_data(title="While Redis is away"))
        assert posted.status_code == 201, posted.text
        stored = pro.call("GET", "/notifications").json()["items"]
        assert [n["data"]["need"]["id"] for n in stored if n["type"] == "need.matched"] == [
            posted.json()["id"]]
        status, body = readiness(base)
        assert status == 503 and body["checks"]["database"] == {"ok": True}
        assert body["checks"]["redis"]["ok"] is False
        assert requests.get(base + "/healthz", timeout=10).status_code == 200

        proxy.restore()
        assert readiness(base)[0] == 200
        again = customer.call("POST", "/needs", json=need_data(title="Redis is back"))
        assert again.status_code == 201, again.text


def test_a_redis_that_hangs_costs_a_request_seconds_not_forever(pg_url: str,
                                                                 redis_url: str) -> None:
    """Redis still accepts connections but answers nothing (a partition, a stuck server): the
    live publish and the rate-limit count give up after REDIS_SOCKET_TIMEOUT, so the POST is
    answered and its notification stored; once Redis answers again, so does everything."""
    redis = urlsplit(redis_url)
    with tcp_proxy(redis.hostname or "127.0.0.1", redis.port or 6379) as proxy:
        through_proxy = f"redis://127.0.0.1:{proxy.port}/0"
        with server(pg_url, REDIS_URL=through_proxy, RATELIMIT_STORAGE_URI=through_proxy,
                    REDIS_SOCKET_TIMEOUT="1",
                    SOCKETIO_CHANNEL=f"faults-{uuid.uuid4().hex[:8]}") as base:
            customer, pro = Api(base, unique("hang-c")), Api(base, unique("hang-p"))
            catering_in_austin(pro)

            proxy.pause()
            # Api.call waits 10 s: without the bound, the publish after the commit hangs
            posted = customer.call("POST", "/needs", json=need_data(title="While Redis hangs"))
            assert posted.status_code == 201, posted.text
            stored = pro.call("GET", "/notifications").json()["items"]
            assert [n["data"]["need"]["id"] for n in stored if n["type"] == "need.matched"] == [
                posted.json()["id"]]
            status, body = readiness(base)
            assert status == 503 and body["checks"]["redis"]["ok"] is False

            proxy.resume()
            assert readiness(base)[0] == 200
            again = customer.call("POST", "/needs", json=need_data(title="Redis answers again"))
            assert again.status_code == 201, again.text
    assert titles(pg_url, customer) == ["While Redis hangs", "Redis answers again"]
