"""Webhook deliveries survive a server restart: a real server process (``python -m
marketplace.serve``, its webhook worker running) on a migrated SQLite file owes a real receiver
(tests/receiver.py) several deliveries; the receiver fails them, then holds the next attempts
unanswered; the process is SIGKILLed with the deliveries pending and some under a lease. A new
process on the same file delivers each of them, once: one 2xx answer per ``webhook-id``, none
lost (a delivered row is never claimed again)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from conftest import AUSTIN, migrated_sqlite, need_data
from live import Api, LiveServer
from receiver import Receiver, receiving

NEEDS = 4
SETTINGS = {
    "WEBHOOKS_ALLOW_HTTP": "1", "WEBHOOKS_ALLOW_PRIVATE": "1",
    "WEBHOOKS_INTERVAL_SECONDS": "0.2",
    # retried for as long as the test runs: none fails for good, the webhook is never disabled
    "WEBHOOKS_RETRY_SCHEDULE": ",".join(["0.2"] * 200), "WEBHOOKS_DISABLE_AFTER": "1000",
    # a delivery whose worker died is taken again this soon after it was claimed
    "WEBHOOKS_LEASE_SECONDS": "2", "WEBHOOKS_TIMEOUT_SECONDS": "30",
    "EXPIRY_INTERVAL_SECONDS": "3600",
}


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` (a receiver's list or the database: nothing to await otherwise)
    until it holds; fail saying ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def ids(receiver: Receiver, status: int | None | str = "any") -> list[str]:
    with receiver.lock:
        return [r.headers["webhook-id"] for r in receiver.received
                if status == "any" or r.status == status]


def deliveries(path: str) -> list[tuple[str, int, str | None]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT status, attempts, lease_until FROM webhook_deliveries"
                            " ORDER BY id").fetchall()


def test_deliveries_pending_and_leased_when_the_server_is_killed_arrive_once_after_restart(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    url, _app = migrated_sqlite(tmp_path_factory, "webhooks_restart")
    path = url.removeprefix("sqlite:///")
    first = LiveServer(url, **SETTINGS)
    second = LiveServer(url, first.port, **SETTINGS)
    try:
        with receiving() as receiver:
            receiver.answers = [500] * 10_000  # the receiver fails, until told otherwise
            first.start()
            pro = Api(first.base, f"pro-{uuid.uuid4().hex[:6]}@example.com", "Pia Pro")
            r = pro.call("PUT", "/me/provider", json={
                "handle": f"pro-{uuid.uuid4().hex[:6]}", "display_name": "Pia", "bio": "",
                "categories": ["catering"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
                "radius_km": 25, "active": True})
            assert r.status_code == 200, r.text
            r = pro.call("POST", "/webhooks", json={"url": receiver.url,
                                                     "types": ["need.matched"]})
            assert r.status_code == 201, r.text
            customer = Api(first.base, f"cy-{uuid.uuid4().hex[:6]}@example.com", "Cy Customer")
            for i in range(NEEDS):
                r = customer.call("POST", "/needs", json=need_data(title=f"Restart need {i}"))
                assert r.status_code == 201, r.text

            # every delivery tried and failed at least twice; then attempts are held in flight
            until(lambda: all(n >= 2 for n in Counter(ids(receiver, 500)).values())
                  and len(set(ids(receiver, 500))) == NEEDS, 15, "failed attempts of each")
            receiver.hold()
            until(lambda: ids(receiver, None), 10, "an attempt held in flight")
            first.kill()

            rows = deliveries(path)
            assert len(rows) == NEEDS
            assert all(status == "pending" for status, _n, _lease in rows), rows
            assert any(lease is not None for _s, _n, lease in rows), "none was under a lease"
            assert ids(receiver, 200) == []
            wanted = set(ids(receiver))
            assert len(wanted) == NEEDS

            with receiver.lock:
                receiver.answers = []  # from now on the receiver takes what it is sent
            receiver.release()
            second.start()
            until(lambda: all(s == "delivered" for s, _n, _l in deliveries(path)), 15,
                  "every delivery delivered after the restart")
            delivered = ids(receiver, 200)
            assert Counter(delivered) == dict.fromkeys(wanted, 1), Counter(delivered)
            assert all(lease is None for _s, _n, lease in deliveries(path))
    finally:
        first.close()
        second.close()
