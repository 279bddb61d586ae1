"""The delivery protocol under faults (docs/events.md, "Delivery without loss"): two real server
processes on PostgreSQL and a Redis of the test's own, providers connected to both with real
Socket.IO clients that follow only the documented rule, a stream of needs posted to both, while
Redis is killed and restarted and one server process is killed (SIGKILL) and restarted. Every
recipient ends holding every one of its notifications exactly once (after de-duplication by
id), the same as ``GET /api/v1/notifications``, and the gap rule and ``resync`` did the work."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import redis
import requests
import socketio
from conftest import AUSTIN, IN_CI, migrated, throwaway_pg_database
from live import LiveServer, free_port

from marketplace.accounts import services as accounts
from marketplace.extensions import db
from marketplace.providers import services as providers

PROVIDERS = 10
GAP_GRACE = 0.3  # seconds a client waits for a missing seq before asking (docs: "a moment")


# --- processes the test can kill ----------------------------------------------------------------

class Redis:
    """A redis-server of this test's own (never the machine's), on a free port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("redis-server is required in CI")
            pytest.skip("redis-server is not installed")
        self.binary, self.port = binary, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)  # polling for the port to open; no event to await here

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


Server = LiveServer  # started, SIGKILLed and started again on its port


# --- a client following only the documented protocol ------------------------------------------

class ProtocolClient:
    """docs/events.md, "Delivery without loss", as an integrator would write it: keep the last
    seq held without a gap; resume after it on every (re)connection (``auth`` is a callable,
    read again each time); an event beyond the next seq is a gap: wait a moment for the missing
    ones, then ``replay`` from the last contiguous seq; on ``resync`` do the same at once;
    de-duplicate by id."""

    # notified on every notification any client takes in (a test waits on it to converge)
    arrivals = threading.Condition()

    def __init__(self, base: str, token: str) -> None:
        self.token = token
        self.lock = threading.RLock()
        self.last = 0  # the last contiguous seq held
        self.ahead: set[int] = set()
        self.notes: dict[int, dict[str, Any]] = {}  # by id: de-duplicated
        self.catching_up = True
        self.replaying = False
        self.again = False
        self.timer: threading.Timer | None = None
        self.caught_up = threading.Event()
        # what happened, for the assertions
        self.gaps: list[set[int]] = []  # the seqs missing when a gap replay was asked
        self.resyncs = 0
        self.connections = 0
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2,
                                   reconnection_delay_max=1, randomization_factor=0.2)
        self.sio.on("notification", self.on_notification)
        self.sio.on("replay.more", self.on_more)
        self.sio.on("replay.done", self.on_done)
        self.sio.on("resync", self.on_resync)
        self.sio.connect(base, auth=self.auth, transports=["websocket"], wait_timeout=10)

    def auth(self) -> dict[str, Any]:
        with self.lock:
            self.connections += 1
            self.catching_up, self.replaying, self.again = True, False, False
            self.caught_up.clear()
            self._cancel_timer()
            return {"token": self.token, "last_seq": self.last}

    def on_notification(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.notes.setdefault(event["id"], event)
            seq = event["seq"]
            if seq > self.last:
                self.ahead.add(seq)
                while self.last + 1 in self.ahead:
                    self.ahead.remove(self.last + 1)
                    self.last += 1
            if not self.ahead:
                self._cancel_timer()
            else:
                self._check_gap()
        with ProtocolClient.arrivals:  # (after the client's lock: the waiter takes it inside)
            ProtocolClient.arrivals.notify_all()

    def held(self) -> set[int]:
        with self.lock:
            return set(self.notes)

    def on_more(self, data: dict[str, Any]) -> None:
        with self.lock:
            after = self.last
        self.sio.emit("replay", {"after_seq": after})

    def on_done(self, data: dict[str, Any]) -> None:
        with self.lock:
            if self.replaying:
                self.replaying = False
                if self.again:
                    self.again = False
                    self._ask()
                else:
                    self._check_gap()
                return
            self.catching_up = False
            self.caught_up.set()
            self._check_gap()

    def on_resync(self, data: Any = None) -> None:
        with self.lock:
            self.resyncs += 1
            if self.catching_up:
                return  # replaying from self.last already
            if self.replaying:
                self.again = True
            else:
                self._ask()

    def _check_gap(self) -> None:
        if self.ahead and not self.catching_up and not self.replaying and self.timer is None:
            self.timer = threading.Timer(GAP_GRACE, self._gap_timeout)
            self.timer.daemon = True
            self.timer.start()

    def _gap_timeout(self) -> None:
        with self.lock:
            self.timer = None
            if not self.ahead or self.catching_up:
                return
            self.gaps.append(set(range(self.last + 1, max(self.ahead))) - self.ahead)
            self._ask()

    def _ask(self) -> None:
        self._cancel_timer()
        if self.catching_up or not self.sio.connected:
            return
        if self.replaying:
            self.again = True
            return
        self.replaying = True
        after = self.last
        with suppress(socketio.exceptions.BadNamespaceError):  # dropped: reconnecting replays
            self.sio.emit("replay", {"after_seq": after})

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        with self.lock:
            self._cancel_timer()
        self.sio.disconnect()


# --- the test --------------------------------------------------------------------------------

@dataclass
class Account:
    user_id: int
    token: str


@contextmanager
def world() -> Iterator[tuple[Redis, str, list[Account], Account]]:
    """The test's Redis, a migrated PostgreSQL database, and the providers and the customer,
    written straight into it (with the tests' fast password hashing: what the servers would
    spend on hashing is not what this test is about)."""
    queue = Redis()
    queue.start()
    try:
        with throwaway_pg_database("mkt_delivery") as url:
            app = migrated(url)
            with app.app_context():
                people = []
                for i in range(PROVIDERS + 1):
                    user = accounts.register(f"deliv-{i}@example.com", "delivery-password",
                                             f"Delivery {i}", None, verified=True)
                    people.append(Account(user.id, accounts.create_token(user, "test")[1]))
                    if i < PROVIDERS:
                        providers.save_profile(user, {
                            "handle": f"deliv-{i}", "display_name": f"Delivery Pro {i}",
                            "bio": "", "categories": ["catering"],
                            "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]}, "radius_km": 25,
                            "active": True})
                db.session.remove()
                db.engine.dispose()
            yield queue, url, people[:PROVIDERS], people[PROVIDERS]
    finally:
        queue.kill()


def stored(account: Account, base: str) -> list[dict[str, Any]]:
    """Every notification of the account's user, through the REST feed paged by seq."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        r = requests.get(f"{base}/api/v1/notifications", params={"after_seq": after,
                                                                  "limit": 500},
                         headers={"Authorization": f"Bearer {account.token}"}, timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()["items"]
        if not page:
            return items
        items += page
        after = r.json()["last_seq"]


def test_every_recipient_ends_with_every_notification_once_through_redis_and_process_faults(
) -> None:
    with world() as (queue, url, pros, customer):
        env = {"REDIS_URL": queue.url, "SOCKETIO_CHANNEL": f"delivery-{uuid.uuid4().hex}",
               "EXPIRY_INTERVAL_SECONDS": "3600"}
        a, b = Server(url, **env), Server(url, **env)
        clients: list[ProtocolClient] = []
        try:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(Server.start, (a, b)))
            # half on each process
            clients = [ProtocolClient((a, b)[i % 2].base, pro.token)
                       for i, pro in enumerate(pros)]
            for client in clients:
                assert client.caught_up.wait(10)

            statuses: list[int | str] = []
            need = {"title": "Delivery", "category": "catering", "radius_km": 30,
                    "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
                    "budget": {"amount": 10000, "currency": "USD"}}

            def post_to_both(seconds: float, servers: tuple[Server, ...] = (a, b)) -> None:
                """Needs posted to A and B in turn, about five a second."""
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    for server in servers:
                        try:
                            r = requests.post(f"{server.base}/api/v1/needs", json=need,
                                              headers={"Authorization":
                                                       f"Bearer {customer.token}"},
                                              timeout=10)
                            statuses.append(r.status_code)
                        except requests.RequestException as exc:  # B is down, or died
                            statuses.append(type(exc).__name__)
                        time.sleep(0.1)  # pacing the stream, not waiting for anything

            started = time.monotonic()
            post_to_both(1.0)
            b.kill()  # SIGKILL: its clients' connections drop
            post_to_both(0.3)
            b.start()  # same port: its clients reconnect with their last seq
            post_to_both(1.0)
            queue.kill()  # Redis away: publishes fail, subscriptions break
            post_to_both(1.5)  # A's and B's clients each see gaps: the other's needs
            # Then needs through B only: A's clients hear nothing more (their gap replays come
            # and go before the last of these), and nothing is posted once Redis is back, so
            # no later event reveals the loss: only resync recovers it.
            post_to_both(1.0, (b,))
            queue.start()  # back, empty: the processes resubscribe
            faults = time.monotonic() - started

            # Everyone converges on what is stored, following only the protocol.
            truth = {id(c): stored(p, a.base) for c, p in zip(clients, pros, strict=True)}
            with ProtocolClient.arrivals:  # the listener backs off 1, 2, 4, 8 s: up to 25 s
                ProtocolClient.arrivals.wait_for(lambda: all(
                    c.held() == {n["id"] for n in truth[id(c)]} for c in clients), timeout=25)
            for client, pro in zip(clients, pros, strict=True):
                expected = truth[id(client)]
                with client.lock:
                    held = sorted(client.notes)
                    assert held == [n["id"] for n in expected], (
                        f"provider {pro.user_id}: missing "
                        f"{sorted({n['id'] for n in expected} - set(held))}, extra "
                        f"{sorted(set(held) - {n['id'] for n in expected})}")
                    assert [client.notes[n["id"]]["seq"] for n in expected] == list(
                        range(1, len(expected) + 1))
                    assert client.last == len(expected) and not client.ahead
            # every need reached every provider; no 5xx anywhere
            accepted = sum(1 for s in statuses if s == 201)
            assert all(s == 201 or isinstance(s, str) for s in statuses), statuses
            assert accepted >= len(statuses) - 5 and accepted > 20, statuses
            for expected in truth.values():
                assert len(expected) >= accepted  # (a POST that died after commit counts too)
            # the protocol did the work: gaps were seen and filled, resync was sent
            gaps = [gap for c in clients for gap in c.gaps if gap]
            assert gaps, "no client saw a gap: the faults did not bite"
            assert sum(c.resyncs for c in clients) > 0, "no resync reached a client"
            assert all(c.connections >= 2 for c in clients[1::2]), "B's clients reconnected"
            print(f"\n{accepted} needs in {faults:.1f} s; {len(gaps)} gaps filled (missing "
                  f"{sum(map(len, gaps))} seqs); {sum(c.resyncs for c in clients)} resyncs")
        except BaseException:
            print("--- server A ---\n" + a.output()[-4000:])
            print("--- server B ---\n" + b.output()[-4000:])
            raise
        finally:
            for client in clients:
                client.close()
            a.close()
            b.close()
        # In the database: each recipient's seqs are 1..n without a hole (and unique).
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            rows = conn.execute(
                "SELECT user_id, count(*), count(DISTINCT seq), min(seq), max(seq) "
                "FROM notifications GROUP BY user_id").fetchall()
        assert len(rows) == PROVIDERS
        for _user, count, distinct, low, high in rows:
            assert (distinct, low, high) == (count, 1, count)
