"""A real server process killed (SIGKILL) at each point of a ``POST /api/v1/needs`` with an
Idempotency-Key, then the same request retried on another process, as a client would: the
retry ends with the need created exactly once and its 201 (or the stored 201 replayed), and a
key is never stuck -- at worst the retry is told to wait out the dead request's lease.

The kill is the test-only ``FAULT_INJECT`` setting (api/idempotency.FAULT_POINTS)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest
import requests
from conftest import migrated, need_data, throwaway_pg_database
from live import Api, server

from marketplace.api.idempotency import FAULT_POINTS

LEASE = 2  # seconds; IDEMPOTENCY_LEASE_SECONDS of both processes


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with throwaway_pg_database("mkt_faults_idem") as url:
        migrated(url)
        yield url


@pytest.fixture(scope="module")
def servers(pg_url: str) -> Iterator[dict[str, str]]:
    """The process the client retries on (``"survivor"``) and one per fault point, each to die
    there. Started one after another: started together on a loaded 2-core machine, one took
    longer than live.server's 30 s."""
    settings = {"survivor": {}, **{point: {"FAULT_INJECT": point} for point in FAULT_POINTS}}
    with ExitStack() as stack:
        yield {name: stack.enter_context(server(pg_url, IDEMPOTENCY_LEASE_SECONDS=str(LEASE),
                                                **extra))
               for name, extra in settings.items()}


@pytest.fixture(scope="module")
def survivor(servers: dict[str, str]) -> str:
    return servers["survivor"]


@pytest.fixture(scope="module")
def customer(survivor: str) -> Api:
    return Api(survivor, f"killed-{uuid.uuid4().hex[:6]}@example.com")


def needs_titled(pg_url: str, title: str) -> list[int]:
    with psycopg.connect(pg_url) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM needs WHERE title = %s", (title,))]


def post(base: str, customer: Api, key: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(base + "/api/v1/needs", json=body, timeout=10, headers={
        "Authorization": f"Bearer {customer.token}", "Idempotency-Key": key})


def retry_until_answered(base: str, customer: Api, key: str,
                         body: dict[str, Any]) -> tuple[requests.Response, list[int]]:
    """Retry as docs/api.md says: on a 409 for a key still held, wait its Retry-After."""
    codes = []
    deadline = time.monotonic() + LEASE + 5
    while True:
        r = post(base, customer, key, body)
        codes.append(r.status_code)
        if r.status_code != 409:
            return r, codes
        wait = int(r.headers["Retry-After"])
        assert 1 <= wait <= LEASE, r.headers
        assert time.monotonic() + wait < deadline, f"the key stayed held: {codes}"
        time.sleep(wait)  # the dead request's lease runs out on the clock; nothing to await


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_request_killed_at_any_point_is_retried_to_exactly_one_need(
        pg_url: str, servers: dict[str, str], survivor: str, customer: Api, point: str) -> None:
    title = f"Killed at {point}"
    body, key, doomed = need_data(title=title), f"key-{point}", servers[point]
    with pytest.raises(requests.ConnectionError):
        post(doomed, customer, key, body)
    with pytest.raises(requests.ConnectionError):  # the process is gone, not just the reply
        requests.get(doomed + "/healthz", timeout=5)
    stored = point == "idempotency.after_store"
    # nothing of the request is durable unless all of it is
    assert len(needs_titled(pg_url, title)) == (1 if stored else 0)

    r, codes = retry_until_answered(survivor, customer, key, body)
    assert r.status_code == 201, r.text
    [need_id] = needs_titled(pg_url, title)
    assert r.json()["id"] == need_id and r.json()["title"] == title
    if point in ("idempotency.after_reserve", "idempotency.after_work"):
        assert set(codes[:-1]) <= {409}, codes  # told to wait out the lease (unless it ran out)
    else:
        assert codes == [201], codes
    assert (r.headers.get("Idempotent-Replayed") == "true") == stored

    again = post(survivor, customer, key, body)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == r.json()
    assert needs_titled(pg_url, title) == [need_id]
