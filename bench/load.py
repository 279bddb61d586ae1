"""Load test: a realistic mix against the production-style server, for a bounded time.

    .venv/bin/python -m bench.load [--duration 60] [--rate 400] [--processes 1|2]
        [--backend sqlite|postgresql] [--providers 16] [--customers 16] [--browsers 12]
        [--until OPERATION ...] [--max-duration 60] [--json PATH]

It

1. builds a throw-away database (a temporary SQLite file, or a new PostgreSQL database on
   ``TEST_POSTGRES_URL``'s server, dropped at the end) with the real migrations and inserts
   the accounts straight into it (one argon2 hash shared by all, an API token each, as
   bench/fanout.py does): customers, and providers around Austin who each serve one of four
   categories within 25 km -- so a need posted in Austin reaches a quarter of them;
2. starts the server as in production: ``gunicorn -c gunicorn.conf.py wsgi:app`` (the
   gevent-websocket worker), one worker, or ``--processes 2`` workers sharing a private
   ``redis-server`` started on a free port as the Socket.IO message queue (PostgreSQL then);
   **every rate limit raised** to 1,000,000 an hour (the ``RATE_LIMIT_*`` settings), since the
   whole load comes from one address and a few accounts;
3. drives it with locust, used as a library (``FastHttpUser``: geventhttpclient), all users
   in this one process:
   - *customers* (API, ``Authorization: Bearer``) post needs and read their needs, the
     offers on them and their notifications; each holds a Socket.IO connection (python-socketio,
     WebSocket transport, ``auth={"token": ...}``) and answers some ``offer.received`` with a
     message;
   - *providers* (API) read their feed, the needs they were sent, their pending offers and
     profiles; each holds a Socket.IO connection and answers some ``need.matched`` with an
     offer and some ``message.received`` with a message;
   - *browsers*, signed in through the sign-in form (a session cookie), load pages: the home
     page, My needs or the feed, a need's page, a provider's profile;
   each user runs at a constant throughput (``constant_throughput``) chosen so the scheduled
   requests add up to ``--rate``; the offers and messages sent in answer to events come on
   top;
4. measures for ``--duration`` seconds once every Socket.IO connection is up (and, with
   ``--until OPERATION``, on until each such operation has a sample, at most
   ``--max-duration`` seconds): throughput
   (completed HTTP requests per second), p50/p99 per operation, errors by kind (5xx counted
   apart), the load average and the CPU the server and this process burned;
5. then stops the load and checks delivery: every row of ``notifications`` (all of them are for
   a connected user, since every account holds a connection from before the first request)
   must have reached that user's client; duplicates are de-duplicated by id and counted.

The exit status is 1 if a 5xx was answered or a notification was not delivered.
Percentiles are nearest-rank over every request of the window.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.pool

# locust patches the standard library for gevent when imported: before socketio (requests,
# ssl) and everything that opens sockets.
import locust
import psutil
import socketio
from locust import FastHttpUser, constant_throughput, task
from locust.env import Environment

from bench.common import free_port, load_note, out, pct, reset_id_sequences, wait_serving
from bench.scratch import scratch_database

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
AUSTIN = (30.2672, -97.7431)
SPREAD_KM = 5.0
PROVIDER_RADIUS_KM = 25.0
NEED_RADIUS_KM = 30.0
CATEGORIES = 4  # the first four seeded categories; provider i serves category i % 4
PASSWORD = "load-password-1"

# Shares of --rate scheduled per kind of user; offers and messages sent in answer to live
# events come on top (about a tenth more at the defaults).
SHARES = {"customer": 0.25, "provider": 0.30, "browser": 0.35}
P_OFFER = 0.3  # a provider answers a need.matched with an offer
P_MESSAGE = 0.5  # a customer answers an offer.received (a provider a message.received)

TARGET_RPS = 300.0
TARGET_P99_MS = 200.0


def point_near(lat: float, lon: float, max_km: float, rng: random.Random) -> tuple[float, float]:
    """Uniform in a disc of ``max_km`` around the point (flat approximation, fine at 5 km)."""
    r = max_km * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    return (lat + r * math.cos(a) / 111.195,
            lon + r * math.sin(a) / (111.195 * math.cos(math.radians(lat))))


# --------------------------------------------------------------------------------------------
# seeding


@dataclass
class Account:
    user_id: int
    email: str
    token: str
    handle: str | None = None  # providers
    category: str | None = None


@dataclass
class Seeded:
    customers: list[Account]
    providers: list[Account]
    categories: list[str]


def seed(url: str, customers: int, providers: int, rng: random.Random) -> Seeded:
    """Migrate ``url`` and insert the accounts, their API tokens and the providers' profiles
    and coverage rows (as ``matching.sync_coverage`` writes them: the base's cell)."""
    import flask_migrate
    from argon2 import PasswordHasher
    from sqlalchemy import insert, select

    from marketplace import create_app
    from marketplace.accounts.auth import TOKEN_PREFIX, hash_token
    from marketplace.accounts.models import ApiToken, User
    from marketplace.db_types import utcnow
    from marketplace.extensions import db
    from marketplace.geo import grid_cell_centre, lat_row
    from marketplace.providers.models import (
        Category,
        Provider,
        ProviderCoverage,
        provider_categories,
    )

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "load-secret",
                      "REDIS_URL": None})
    with app.app_context():
        logging.disable(logging.INFO)  # alembic's per-migration INFO lines
        try:
            flask_migrate.upgrade()
        finally:
            logging.disable(logging.NOTSET)
        cats = db.session.execute(select(Category.slug, Category.id).order_by(Category.id)).all()
        cats = cats[:CATEGORIES]
        password_hash = PasswordHasher().hash(PASSWORD)  # once, shared by everyone
        now = utcnow()
        users, tokens, profiles, links, coverage = [], [], [], [], []

        def add_user(uid: int, email: str) -> Account:
            users.append({"id": uid, "email": email, "name": f"Load {uid}", "phone": None,
                          "password_hash": password_hash, "created_at": now,
                          "verified_at": now})
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            tokens.append({"user_id": uid, "name": "load", "token_hash": hash_token(token),
                           "prefix": token[: len(TOKEN_PREFIX) + 6], "created_at": now,
                           "last_used_at": now})
            return Account(uid, email, token)

        out_customers = [add_user(uid, f"load-customer-{uid}@example.com")
                         for uid in range(1, customers + 1)]
        out_providers = []
        for i in range(providers):
            uid = customers + 1 + i
            account = add_user(uid, f"load-pro-{uid}@example.com")
            slug, cid = cats[i % len(cats)]
            account.handle, account.category = f"loadpro{uid}", slug
            lat, lon = point_near(*AUSTIN, SPREAD_KM, rng)
            profiles.append({"id": uid, "user_id": uid, "handle": account.handle,
                             "display_name": f"Load Pro {uid}", "bio": "Load test provider",
                             "base_lat": lat, "base_lon": lon, "radius_km": PROVIDER_RADIUS_KM,
                             "active": True, "created_at": now, "updated_at": now})
            links.append({"provider_id": uid, "category_id": cid})
            cell = grid_cell_centre(lat, lon)
            coverage.append({"provider_id": uid, "category_id": cid, "user_id": uid,
                             "lat_row": lat_row(cell.lat), "lat": cell.lat, "lon": cell.lon,
                             "radius_km": PROVIDER_RADIUS_KM})
            out_providers.append(account)
        for table, rows in ((User.__table__, users), (ApiToken.__table__, tokens),
                            (Provider.__table__, profiles), (provider_categories, links),
                            (ProviderCoverage.__table__, coverage)):
            db.session.execute(insert(table), rows)
        db.session.commit()
        reset_id_sequences(db.session, ("users", "providers"))  # the ids above were ours
        db.session.remove()
        db.engine.dispose()
    return Seeded(out_customers, out_providers, [slug for slug, _ in cats])


def notifications_in(url: str) -> list[tuple[int, int]]:
    """(id, user_id) of every notification row."""
    from sqlalchemy import create_engine, text

    from marketplace.config import normalise_database_url

    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as con:
            return [tuple(r) for r in con.execute(text("SELECT id, user_id FROM notifications"))]
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# the server


def rate_limit_settings() -> list[str]:
    """The name of every rate limit the app configures (config.from_env)."""
    from marketplace.config import from_env

    return sorted(k for k in from_env(SECRET_KEY="x") if k.startswith("RATE_LIMIT_"))


@contextmanager
def redis_server(url: str | None = None) -> Iterator[str]:
    """``url`` if given, else a private redis-server on a free port, no persistence; its URL."""
    if url:
        yield url
        return
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("--processes 2 needs redis-server on PATH")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)  # waiting for the port to open; nothing to await
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Server:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` on a free port."""

    def __init__(self, database_url: str, processes: int, redis_url: str | None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in stop)
        env = {**os.environ, "DATABASE_URL": database_url, "HOST": "127.0.0.1",
               "PORT": str(self.port), "SECRET_KEY": "load-secret",
               "WEB_CONCURRENCY": str(processes),
               **dict.fromkeys(rate_limit_settings(), "1000000 per hour")}
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self, processes: int, timeout: float = 60) -> None:
        """Once the app answers and gunicorn has forked all its workers."""
        try:
            wait_serving(self.proc, self.base + "/api/v1/categories", self.output,
                         timeout=timeout,
                         ready=lambda: len(psutil.Process(self.proc.pid).children()) >= processes)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None

    def cpu_seconds(self) -> float:
        try:
            procs = [psutil.Process(self.proc.pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for p in procs:
            with suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        # SIGINT: gunicorn's quick shutdown (SIGTERM would wait up to 30 s for the load's
        # keep-alive connections); the figures are taken by now.
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------------------
# shared state of the load process


@dataclass
class State:
    measuring: bool = False
    reacting: bool = True
    closing: bool = False
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)  # (operation, status or error)
    received: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    disconnects: Counter = field(default_factory=Counter)
    connected: int = 0
    started: int = 0  # users whose on_start has finished
    connect_retries: int = 0
    all_connected: gevent.event.Event = field(default_factory=gevent.event.Event)
    expected_sockets: int = 0
    customer_needs: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    customer_offers: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    provider_needs: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    reactions: gevent.pool.Group = field(default_factory=gevent.pool.Group)
    sockets: list[Any] = field(default_factory=list)


STATE = State()
POOLS: dict[str, list[Any]] = {"customer": [], "provider": [], "browser": []}


def on_request(request_type: str, name: str, response_time: float, response: Any = None,
               exception: Any = None, **_kw: Any) -> None:
    if not STATE.measuring:
        return
    op = f"{request_type} {name}"
    STATE.samples[op].append(response_time)
    status = getattr(response, "status_code", 0) or 0
    STATE.statuses[status // 100 * 100 if status else "error"] += 1
    if exception is not None or status >= 400 or not status:
        STATE.failures[(op, status or type(exception).__name__)] += 1


class LiveMixin:
    """A Socket.IO connection for the user's account, recording every notification id."""

    account: Account

    def connect_live(self) -> None:
        # engine.io's 5 s request timeout is short for a worker still importing the app on a
        # busy machine; a failed handshake before the measurement is retried (and counted).
        for attempt in range(3):
            self.sio = socketio.Client(reconnection=False, request_timeout=30)
            self.sio.on("notification", self._on_notification)
            self.sio.on("disconnect", self._on_disconnect)
            try:
                self.sio.connect(self.host, auth={"token": self.account.token},  # type: ignore[attr-defined]
                                 transports=["websocket"], wait_timeout=30)
                break
            except socketio.exceptions.ConnectionError:
                STATE.connect_retries += 1
                if attempt == 2:
                    raise
        STATE.connected += 1
        STATE.sockets.append(self.sio)
        if STATE.connected >= STATE.expected_sockets:
            STATE.all_connected.set()
        # No request until every socket is up: a need posted while a provider it matches was
        # still connecting was stored and emitted to nobody, and counted as lost (these clients
        # only listen; they do not replay on connect, as docs/events.md has a client do).
        STATE.all_connected.wait(timeout=90)

    def _on_disconnect(self, *_reason: Any) -> None:
        if not STATE.closing:
            STATE.disconnects[self.account.user_id] += 1

    def _on_notification(self, event: dict[str, Any]) -> None:
        STATE.received[self.account.user_id].append(event["id"])
        if STATE.reacting:
            self.react(event)

    def react(self, event: dict[str, Any]) -> None:
        pass

    def later(self, fn: Any, *args: Any) -> None:
        """Answer an event from its own greenlet (never inside the Socket.IO handler)."""
        STATE.reactions.spawn(fn, *args)



def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


class CustomerUser(LiveMixin, FastHttpUser):
    """Posts needs and follows them through the API; answers offers with a message."""

    fixed_count = 0
    wait_time = constant_throughput(1.0)

    def on_start(self) -> None:
        self.account = POOLS["customer"].pop()
        self.headers = bearer(self.account)
        self.rng = random.Random(self.account.user_id)
        self.seq = 0
        self.connect_live()
        STATE.started += 1

    @task(2)
    def post_need(self) -> None:
        self.seq += 1
        lat, lon = point_near(*AUSTIN, SPREAD_KM, self.rng)
        body = {"title": f"Load test need {self.account.user_id}-{self.seq}",
                "description": "Posted by the load test; nothing to do here.",
                "category": self.rng.choice(SEEDED.categories),
                "location": {"lat": lat, "lon": lon}, "radius_km": NEED_RADIUS_KM,
                "budget": {"amount": 5000, "currency": "USD"}}
        r = self.client.post("/api/v1/needs", json=body, headers=self.headers,
                             name="/api/v1/needs")
        if r.status_code == 201:
            STATE.customer_needs[self.account.user_id].append(r.json()["id"])

    def _a_need(self) -> int | None:
        needs = STATE.customer_needs[self.account.user_id]
        return self.rng.choice(needs[-20:]) if needs else None

    @task(2)
    def my_needs(self) -> None:
        self.client.get("/api/v1/needs?mine=true&status=open", headers=self.headers,
                        name="/api/v1/needs?mine=true")

    @task(3)
    def need_offers(self) -> None:
        need = self._a_need()
        if need is not None:
            self.client.get(f"/api/v1/needs/{need}/offers", headers=self.headers,
                            name="/api/v1/needs/[id]/offers")

    @task(2)
    def notifications(self) -> None:
        self.client.get("/api/v1/notifications?limit=20", headers=self.headers,
                        name="/api/v1/notifications")

    @task(1)
    def categories(self) -> None:
        self.client.get("/api/v1/categories", name="/api/v1/categories")

    def react(self, event: dict[str, Any]) -> None:
        if event["type"] == "offer.received":
            offer = event["data"]["offer"]["id"]
            STATE.customer_offers[self.account.user_id].append(offer)
            if self.rng.random() < P_MESSAGE:
                self.later(self.message, offer)

    def message(self, offer: int) -> None:
        self.client.post(f"/api/v1/offers/{offer}/messages", headers=self.headers,
                         json={"body": "Thanks, when could you come?"},
                         name="/api/v1/offers/[id]/messages")


class ProviderUser(LiveMixin, FastHttpUser):
    """Reads the feed and what it was sent through the API; answers needs with offers."""

    fixed_count = 0
    wait_time = constant_throughput(1.0)

    def on_start(self) -> None:
        self.account = POOLS["provider"].pop()
        self.headers = bearer(self.account)
        self.rng = random.Random(self.account.user_id)
        self.connect_live()
        STATE.started += 1

    @task(3)
    def feed(self) -> None:
        self.client.get("/api/v1/feed?limit=20", headers=self.headers, name="/api/v1/feed")

    @task(3)
    def need(self) -> None:
        needs = STATE.provider_needs[self.account.user_id]
        if needs:
            self.client.get(f"/api/v1/needs/{self.rng.choice(needs[-20:])}",
                            headers=self.headers, name="/api/v1/needs/[id]")

    @task(2)
    def pending_offers(self) -> None:
        self.client.get("/api/v1/offers?status=pending", headers=self.headers,
                        name="/api/v1/offers?status=pending")

    @task(1)
    def profile(self) -> None:
        other = self.rng.choice(SEEDED.providers)
        self.client.get(f"/api/v1/providers/{other.handle}", name="/api/v1/providers/[handle]")

    @task(1)
    def notifications(self) -> None:
        self.client.get("/api/v1/notifications?limit=20", headers=self.headers,
                        name="/api/v1/notifications")

    def react(self, event: dict[str, Any]) -> None:
        if event["type"] == "need.matched":
            need = event["data"]["need"]["id"]
            STATE.provider_needs[self.account.user_id].append(need)
            if self.rng.random() < P_OFFER:
                self.later(self.offer, need)
        elif event["type"] == "message.received" and self.rng.random() < P_MESSAGE:
            self.later(self.message, event["data"]["offer_id"])

    def offer(self, need: int) -> None:
        self.client.post(f"/api/v1/needs/{need}/offers", headers=self.headers,
                         json={"message": "I can do this."}, name="/api/v1/needs/[id]/offers")

    def message(self, offer: int) -> None:
        self.client.post(f"/api/v1/offers/{offer}/messages", headers=self.headers,
                         json={"body": "Tomorrow morning works."},
                         name="/api/v1/offers/[id]/messages")


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class BrowserUser(FastHttpUser):
    """A person with a browser, signed in with the sign-in form, loading pages."""

    fixed_count = 0
    wait_time = constant_throughput(1.0)

    def on_start(self) -> None:
        self.account, self.is_provider = POOLS["browser"].pop()
        self.rng = random.Random(-self.account.user_id)
        page = self.client.get("/signin", name="/signin")
        token = CSRF.search(page.text or "")
        r = self.client.post("/signin", name="/signin", allow_redirects=False,
                             data={"email": self.account.email, "password": PASSWORD,
                                   "csrf_token": token.group(1) if token else ""})
        if r.status_code != 302:
            raise RuntimeError(f"sign-in failed: {r.status_code}")
        STATE.started += 1

    @task(2)
    def home(self) -> None:
        self.client.get("/", name="/")

    @task(2)
    def list_page(self) -> None:
        if self.is_provider:
            self.client.get("/feed", name="/feed")
        else:
            self.client.get("/needs", name="/needs")

    @task(3)
    def need_page(self) -> None:
        source = STATE.provider_needs if self.is_provider else STATE.customer_needs
        needs = source[self.account.user_id]
        if needs:
            self.client.get(f"/needs/{self.rng.choice(needs[-20:])}", name="/needs/[id]")

    @task(2)
    def profile_page(self) -> None:
        self.client.get(f"/p/{self.rng.choice(SEEDED.providers).handle}", name="/p/[handle]")


SEEDED = Seeded([], [], [])


# --------------------------------------------------------------------------------------------
# a run


def run(args: argparse.Namespace) -> dict[str, Any]:
    global SEEDED
    backend = args.backend or ("postgresql" if args.processes > 1 else "sqlite")
    out(f"load test: {args.duration:.0f} s at a scheduled {args.rate:.0f} requests/s, "
        f"{args.customers} customers + {args.providers} providers (API + Socket.IO) + "
        f"{args.browsers} browsers (pages); gunicorn, {args.processes} worker process(es), "
        f"{backend}{' + Redis' if args.processes > 1 else ''}; every rate limit raised to "
        f"1,000,000 an hour")
    out(f"python {sys.version.split()[0]}, locust {locust.__version__}; {load_note()}")
    with scratch_database(backend, args.pg_admin_url, "bench-load") as (url, where), \
            (redis_server(args.redis_url) if args.processes > 1 else _none()) as redis_url:
        t0 = time.perf_counter()
        SEEDED = seed(url, args.customers, args.providers, random.Random(args.seed))
        out(f"{where}: migrated and seeded in {time.perf_counter() - t0:.1f} s"
            + (f"; Redis {redis_url}" if redis_url else ""))
        server = Server(url, args.processes, redis_url)
        try:
            server.wait_ready(args.processes)
            return drive(server, url, args)
        finally:
            server.stop()
            if args.server_log:
                out("--- server log ---\n" + server.output())


@contextmanager
def _none() -> Iterator[None]:
    yield None


def drive(server: Server, url: str, args: argparse.Namespace) -> dict[str, Any]:
    POOLS["customer"] = list(SEEDED.customers)
    POOLS["provider"] = list(SEEDED.providers)
    half = args.browsers // 2
    POOLS["browser"] = ([(a, False) for a in SEEDED.customers[:args.browsers - half]]
                        + [(a, True) for a in SEEDED.providers[:half]])
    users = {"customer": (CustomerUser, args.customers),
             "provider": (ProviderUser, args.providers),
             "browser": (BrowserUser, len(POOLS["browser"]))}
    for kind, (cls, n) in users.items():
        cls.fixed_count = n
        # every task is one request (a few skip theirs until the user has a need to look at)
        cls.wait_time = constant_throughput(args.rate * SHARES[kind] / max(1, n))
    STATE.expected_sockets = args.customers + args.providers
    env = Environment(user_classes=[cls for cls, n in users.values() if n], host=server.base,
                      stop_timeout=10)
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    total = sum(n for _, n in users.values())
    runner.start(total, spawn_rate=total)
    if not STATE.all_connected.wait(timeout=60):
        raise SystemExit(f"only {STATE.connected} of {STATE.expected_sockets} sockets connected")
    deadline = time.monotonic() + 60
    while STATE.started < total:  # browsers still signing in (argon2)
        if time.monotonic() > deadline:
            raise SystemExit(f"only {STATE.started} of {total} users started")
        gevent.sleep(0.05)
    gevent.sleep(0.5)  # let every user's first task start (its rate then holds)
    loads = [os.getloadavg()[0]]
    cpu_server0, cpu_self0 = server.cpu_seconds(), _own_cpu()
    cpu_pg0 = postgres_cpu_seconds(url)
    STATE.measuring = True
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < args.duration:
        gevent.sleep(min(5.0, args.duration - elapsed))
        loads.append(os.getloadavg()[0])
    # --until: a short run on a busy machine may not yet have reached every operation (an
    # offer waits for a need's notification); measure on until it has, within --max-duration
    while (unmet := [op for op in args.until if not STATE.samples.get(op)]):
        if time.monotonic() - t0 >= args.max_duration:
            out(f"--until: no sample of {', '.join(unmet)} after {args.max_duration:.0f} s")
            break
        gevent.sleep(0.2)
    STATE.measuring = False
    window = time.monotonic() - t0
    cpu_server, cpu_self = server.cpu_seconds() - cpu_server0, _own_cpu() - cpu_self0
    cpu_pg = max(0.0, postgres_cpu_seconds(url) - cpu_pg0)
    # Stop: no new answers to events, the answers under way finish, then the users.
    STATE.reacting = False
    STATE.reactions.join(timeout=30)
    runner.stop()  # the Socket.IO connections stay up until the delivery check is done
    runner.greenlet.kill(block=False)
    delivery = check_delivery(url)
    STATE.closing = True
    for sio in STATE.sockets:
        with suppress(Exception):
            sio.disconnect()
    for cls, _ in users.values():
        cls.fixed_count = 0
    return report(args, window, loads, cpu_server, cpu_self, cpu_pg, delivery)


def postgres_cpu_seconds(url: str) -> float:
    """CPU time of the PostgreSQL server (same host) spent for the run: its backends connected
    to the run's database, plus what the backends that have ended took (the postmaster's
    reaped children). The app's pools do not keep every connection they open -- under this
    load each worker opens and closes several a second beyond its pool_size -- so counting
    only the backends alive at the window's ends missed about half of PostgreSQL's CPU.
    Backends of other databases that end meanwhile count too: run it on a quiet server."""
    if not url.startswith("postgresql"):
        return 0.0
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as con:
        own = con.execute("SELECT pg_backend_pid()").fetchone()[0]
        pids = [pid for (pid,) in con.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> %s", (own,))]
        postmaster = psutil.Process(own).ppid()
    total = 0.0
    with suppress(psutil.Error):
        t = psutil.Process(postmaster).cpu_times()
        total += t.children_user + t.children_system
    for pid in pids:
        with suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def check_delivery(url: str, timeout: float = 20.0) -> dict[str, Any]:
    """Compare the notifications table with what the clients received, once the stragglers
    have arrived (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = notifications_in(url)  # again each time: a request cut by the stop may commit
        got = {uid: set(ids) for uid, ids in STATE.received.items()}
        missing = [(nid, uid) for nid, uid in rows if nid not in got.get(uid, ())]
        if not missing or time.monotonic() > deadline:
            break
        gevent.sleep(0.1)  # events still in flight: look again
    received = sum(len(v) for v in STATE.received.values())
    unique = sum(len(set(v)) for v in STATE.received.values())
    return {"notifications": len(rows), "lost": len(missing), "lost_ids": missing[:20],
            "received": received, "duplicates": received - unique,
            "unexpected": unique - (len(rows) - len(missing)),
            "disconnects": sum(STATE.disconnects.values()),
            "connect_retries": STATE.connect_retries}


def report(args: argparse.Namespace, window: float, loads: list[float], cpu_server: float,
           cpu_self: float, cpu_pg: float, delivery: dict[str, Any]) -> dict[str, Any]:
    count = sum(len(v) for v in STATE.samples.values())
    fives = STATE.statuses.get(500, 0)
    errors = sum(STATE.failures.values())
    all_times = sorted(t for v in STATE.samples.values() for t in v)
    rps = count / window
    out(f"\nmeasured {window:.1f} s: {count:,} requests, {rps:.1f} requests/s; "
        f"all requests p50 {pct(all_times, 50):.1f} ms, p99 {pct(all_times, 99):.1f} ms")
    per_request = (cpu_server + cpu_pg) / max(1, count) * 1000
    out(f"load average during the run (1 min, every 5 s): "
        f"{', '.join(f'{x:.1f}' for x in loads)}")
    out(f"CPU (of {os.cpu_count()} cores): server {cpu_server / window:.2f} cores"
        + (f" + its PostgreSQL backends {cpu_pg / window:.2f}" if cpu_pg else "")
        + f", load process {cpu_self / window:.2f}; the server used {per_request:.1f} ms of CPU "
        f"per request (answers to events, pages and fan-out included), so a core it had to "
        f"itself would serve about {1000 / per_request:.0f} requests/s of this mix")
    out(f"  {'operation':<44} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>6}")
    ops = {}
    fail_by_op = Counter()
    for (op, _), n in STATE.failures.items():
        fail_by_op[op] += n
    for op in sorted(STATE.samples, key=lambda o: -len(STATE.samples[o])):
        s = sorted(STATE.samples[op])
        ops[op] = {"count": len(s), "rps": len(s) / window, "p50": pct(s, 50),
                   "p99": pct(s, 99), "max": s[-1], "errors": fail_by_op[op]}
        out(f"  {op:<44} {len(s):7,} {len(s) / window:7.1f} {pct(s, 50):8.1f} "
            f"{pct(s, 99):8.1f} {s[-1]:8.1f} {fail_by_op[op]:6}")
    statuses = {str(k): v for k, v in sorted(STATE.statuses.items(), key=str)}
    out(f"status classes: {statuses}; 5xx: {fives}; failed requests: {errors}")
    for (op, what), n in STATE.failures.most_common(10):
        out(f"  {n:6} x {op}: {what}")
    out(f"notifications: {delivery['notifications']:,} created, all for connected users; "
        f"received {delivery['received']:,} ({delivery['duplicates']} duplicates, de-duplicated "
        f"by id); lost: {delivery['lost']}; socket disconnects: {delivery['disconnects']} "
        f"(handshakes retried before the run: {delivery['connect_retries']})")
    if delivery["lost"]:
        out(f"  lost (id, user): {delivery['lost_ids']}")
    p99 = pct(all_times, 99)
    out(f"targets: >= {TARGET_RPS:.0f} requests/s: {'met' if rps >= TARGET_RPS else 'MISSED'}; "
        f"p99 <= {TARGET_P99_MS:.0f} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'}; "
        f"zero 5xx: {'met' if not fives else 'MISSED'}; zero lost notifications: "
        f"{'met' if not delivery['lost'] else 'MISSED'}")
    return {"duration_s": window, "requests": count, "rps": rps, "p50_ms": pct(all_times, 50),
            "p99_ms": p99, "status_5xx": fives, "failed": errors, "statuses": statuses,
            "operations": ops, "delivery": delivery, "load_average": loads,
            "cpu_server_cores": cpu_server / window, "cpu_load_cores": cpu_self / window,
            "cpu_postgres_cores": cpu_pg / window, "server_cpu_ms_per_request": per_request,
            "processes": args.processes}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds (60)")
    p.add_argument("--rate", type=float, default=400.0,
                   help="scheduled requests/s in all; answers to events come on top (400)")
    p.add_argument("--processes", type=int, default=1, choices=(1, 2),
                   help="gunicorn workers; 2 adds a private Redis and needs PostgreSQL")
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default=None,
                   help="default: sqlite with one process, postgresql with two")
    p.add_argument("--customers", type=int, default=16)
    p.add_argument("--providers", type=int, default=16)
    p.add_argument("--browsers", type=int, default=12)
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    p.add_argument("--redis-url", help="with --processes 2: this Redis (use a db of its own) "
                   "instead of a private redis-server on a free port")
    p.add_argument("--until", action="append", default=[], metavar="OPERATION",
                   help="measure past --duration until this operation (as printed, e.g. "
                   "'POST /api/v1/needs/[id]/offers') has a sample; repeatable")
    p.add_argument("--max-duration", type=float, default=60.0,
                   help="with --until: measure no longer than this (60)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--server-log", action="store_true", help="print the server's log at the end")
    args = p.parse_args(argv)
    if args.processes > 1 and args.backend == "sqlite":
        p.error("--processes 2 runs on PostgreSQL")
    logging.basicConfig(level=logging.WARNING)
    result = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    ok = result["status_5xx"] == 0 and result["delivery"]["lost"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
