"""Fan-out benchmark: one matching need, N live providers, how long until the last one knows.

    .venv/bin/python -m bench.fanout [--clients 1000] [--rounds 20] [--servers app,node]
        [--postgres [URL]] [--pin] [--profile FILE] [--polling-first] [--client node|python]

``--client node`` (the default) puts the app beside a minimal Node socket.io server:

1. seeds the database as below and starts the app server (``python -m marketplace.serve``)
   and ``node bench/node/server.js``, with the open-file limit raised;
2. runs ``node bench/node/client.js`` (npm socket.io-client, WebSocket transport), which
   connects N sockets to each server from one Node process, reading each server's RSS from
   /proc before and after (growth / N is the memory per connection), then runs warm-up and
   measured rounds interleaved (app, Node, app, ...): an app round POSTs a matching need with
   the customer's token; a Node round POSTs /emit, and the Node server sends every socket the
   first event the app sent (same shape and size, its own id per socket). Each socket stamps
   its ``notification`` for the round; t0 is just before the request;
3. prints per server the trigger's answer, first receipt p50, last receipt p50/p99, missed and
   duplicate events, KB per connection and server CPU per round, the ratio app / Node, the
   load average, and the targets. ``--profile FILE`` has py-spy record the app server during
   the measured rounds (collapsed stacks, ``--format raw``).

``--client python`` is the earlier mode, the app alone and the load in this process. For
each N it

1. builds a fresh database (SQLite in a temporary directory, or a new PostgreSQL database with
   ``--postgres``) with the real migrations, then inserts N provider accounts directly (users,
   providers, provider_categories, provider_coverage, api_tokens; one argon2 hash shared by
   all) -- creating them over HTTP would spend minutes hashing passwords. Every provider is
   within 5 km of Austin, serves "catering" and reaches 25 km, so every one matches the
   benchmark need (Austin, 30 km). One extra "tutoring" provider in Dallas matches only the
   baseline need;
2. starts a real server process, ``python -m marketplace.serve`` (gevent + gevent-websocket),
   with the open-file limit raised for itself and the child;
3. baseline: connects one Socket.IO client (the Dallas provider) and times rounds whose need
   matches only that provider -- the cost of a POST plus one delivery, no fan-out;
4. reads the server's RSS, connects N ``socketio.AsyncClient`` (aiohttp, WebSocket transport,
   ``auth={"token": ...}``) from this one asyncio process with bounded concurrency, reads
   the RSS again: (after - before) / N is the server memory per connection;
5. runs warm-up rounds, then ``--rounds`` measured rounds: t0 is taken just before the POST
   of a matching need; each client stamps the arrival of its ``need.matched`` for that need;
   the round latency is t0 -> the last client has it. Also reported: every single delivery,
   the POST's own response time (the server emits inside the request, right after commit,
   so this is matching + outbox insert + commit + queueing N events), missed and duplicate
   events, and the CPU both processes burn per round (they share the machine's cores).

CPU is accounted from /proc: the server's and this process's CPU per round, and what every
other process on the machine used meanwhile, so a run on a busy 2-core machine says so. The
server's CPU per round is the floor its latency would have on an idle machine. ``--pin`` puts
the server on CPU 0 and the load process on CPU 1.

Percentiles are nearest-rank; with 20 rounds the p99 of the round latency is the slowest round.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import free_port, pct, reset_id_sequences, wait_serving

ROOT = Path(__file__).resolve().parent.parent

AUSTIN = (30.2672, -97.7431)
DALLAS = (32.7767, -96.7970)
CATEGORY = "catering"
BASELINE_CATEGORY = "tutoring"
SPREAD_KM = 5.0
PROVIDER_RADIUS_KM = 25.0
NEED_RADIUS_KM = 30.0

TARGET_P99_MS_AT_1000 = 150.0
TARGET_KB_PER_CONN = 80.0
TARGET_CONNECTIONS = 5000

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# small helpers


def raise_nofile(wanted: int) -> tuple[int, int]:
    """Raise RLIMIT_NOFILE as far as allowed (the child server inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted)
    if hard != resource.RLIM_INFINITY and target > hard:
        try:  # only root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
            return resource.getrlimit(resource.RLIMIT_NOFILE)
        except (ValueError, OSError):
            target = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def nofile_limit(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as fh:
        for line in fh:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
    return "?"


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used (non-idle, non-iowait), summed over
    cores, from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK


def cpu_pressure() -> str:
    """The kernel's CPU pressure (share of time some runnable task waited for a CPU)."""
    try:
        with open("/proc/pressure/cpu") as fh:
            avg10 = fh.readline().split()[1].split("=")[1]
        return f"CPU pressure {avg10}%"
    except OSError:
        return "CPU pressure n/a"


def point_near(lat: float, lon: float, max_km: float, rng: random.Random) -> tuple[float, float]:
    """A uniformly random point within ``max_km`` of (lat, lon) (flat approximation; fine at
    a few km)."""
    r = max_km * math.sqrt(rng.random())
    theta = rng.random() * 2 * math.pi
    dlat = (r * math.cos(theta)) / 111.32
    dlon = (r * math.sin(theta)) / (111.32 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


# --------------------------------------------------------------------------------------------
# database: migrate, then insert N providers directly


@dataclass
class Seeded:
    customer_token: str
    baseline_token: str
    tokens: list[str]


@contextmanager
def fresh_database(postgres: str | None, tmp: Path, n: int) -> Iterator[str]:
    if postgres is None:
        yield f"sqlite:///{tmp / f'fanout-{n}.sqlite3'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    admin_url = make_url(postgres)
    name = f"bench_fanout_{uuid.uuid4().hex[:10]}"
    plain = admin_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(plain, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(url: str, n: int, rng: random.Random) -> Seeded:
    """Migrate ``url`` and insert one customer, one baseline provider and N matching providers
    with API tokens. Ids are assigned here (the database is new): 1 customer, 2 baseline,
    3.. the N providers."""
    import logging

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

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-secret"})
    with app.app_context():
        logging.disable(logging.INFO)  # alembic's per-migration INFO lines
        try:
            flask_migrate.upgrade()
        finally:
            logging.disable(logging.NOTSET)
        cats = dict(db.session.execute(select(Category.slug, Category.id)).all())
        password_hash = PasswordHasher().hash("bench-password-1")  # once, shared by everyone
        now = utcnow()
        users, providers, links, coverage, tokens, raw = [], [], [], [], [], []

        def add_user(uid: int, email: str) -> str:
            users.append({"id": uid, "email": email, "name": f"Bench {uid}", "phone": None,
                          "password_hash": password_hash, "created_at": now})
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            # last_used_at = now: the token counts as recently used, so authenticating a
            # connection is one indexed SELECT (a first use would also UPDATE + commit).
            tokens.append({"user_id": uid, "name": "bench", "token_hash": hash_token(token),
                           "prefix": token[: len(TOKEN_PREFIX) + 6], "created_at": now,
                           "last_used_at": now})
            return token

        def add_provider(uid: int, category: str, at: tuple[float, float],
                         radius: float) -> None:
            providers.append({"id": uid, "user_id": uid, "handle": f"bench{uid}",
                              "display_name": f"Bench Pro {uid}", "bio": "",
                              "base_lat": at[0], "base_lon": at[1], "radius_km": radius,
                              "active": True, "created_at": now, "updated_at": now})
            links.append({"provider_id": uid, "category_id": cats[category]})
            # the index holds the base's grid-cell centre, as matching.sync_coverage writes it
            cell = grid_cell_centre(*at)
            coverage.append({"provider_id": uid, "category_id": cats[category], "user_id": uid,
                             "lat_row": lat_row(cell.lat), "lat": cell.lat, "lon": cell.lon,
                             "radius_km": radius})

        customer = add_user(1, "bench-customer@example.com")
        baseline = add_user(2, "bench-baseline@example.com")
        add_provider(2, BASELINE_CATEGORY, DALLAS, 10.0)
        for uid in range(3, n + 3):
            raw.append(add_user(uid, f"bench-pro-{uid}@example.com"))
            add_provider(uid, CATEGORY, point_near(*AUSTIN, SPREAD_KM, rng), PROVIDER_RADIUS_KM)
        for table, rows in ((User.__table__, users), (ApiToken.__table__, tokens),
                            (Provider.__table__, providers), (provider_categories, links),
                            (ProviderCoverage.__table__, coverage)):
            db.session.execute(insert(table), rows)
        db.session.commit()
        reset_id_sequences(db.session, ("users", "providers"))  # the ids above were ours
        db.session.remove()
        db.engine.dispose()
    return Seeded(customer, baseline, raw)


# --------------------------------------------------------------------------------------------
# the server process


class Server:
    def __init__(self, database_url: str, pin_cpu: int | None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in stop)
        env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(self.port),
               "HOST": "127.0.0.1", "SECRET_KEY": "bench-secret",
               "EXPIRY_INTERVAL_SECONDS": "3600", "PYTHONUNBUFFERED": "1",
               # every round posts a need as the same customer: lift the posting limit (the
               # limiter still runs, as in production)
               "RATE_LIMIT_NEEDS": "1000000 per hour"}
        env.pop("REDIS_URL", None)  # one process; no message queue
        env.pop("ACCESS_LOG", None)

        def pin() -> None:
            if pin_cpu is not None:
                os.sched_setaffinity(0, {pin_cpu})

        self.proc = subprocess.Popen([sys.executable, "-m", "marketplace.serve"], cwd=ROOT,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     text=True, preexec_fn=pin)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 30) -> None:
        wait_serving(self.proc, self.base + "/api/v1/categories", self.output, timeout=timeout)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------------------------
# the load side: N Socket.IO clients in one asyncio process


class Recorder:
    """Arrival times of ``need.matched`` per need id and client index."""

    def __init__(self) -> None:
        self.arrivals: dict[int, dict[int, float]] = defaultdict(dict)
        self.waiting: dict[int, tuple[int, asyncio.Future[None]]] = {}
        self.duplicates = 0
        self.others = 0
        self.disconnects = 0
        self.measuring = False

    def on_disconnect(self, idx: int, *reason: Any) -> None:
        if self.measuring:
            self.disconnects += 1
            print(f"    client {idx} disconnected: {reason}", flush=True)

    def on_notification(self, idx: int, event: dict[str, Any]) -> None:
        t = time.perf_counter()
        if event.get("type") != "need.matched":
            self.others += 1
            return
        need_id = event["data"]["need"]["id"]
        got = self.arrivals[need_id]
        if idx in got:
            self.duplicates += 1
            return
        got[idx] = t
        self._check(need_id)

    def _check(self, need_id: int) -> None:
        waiter = self.waiting.get(need_id)
        if waiter and len(self.arrivals[need_id]) >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)

    async def wait_for(self, need_id: int, expected: int, timeout: float) -> bool:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[need_id] = (expected, fut)
        self._check(need_id)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting.pop(need_id, None)


@dataclass
class RoundResult:
    post_ms: float
    last_ms: float  # inf when someone missed it
    first_ms: float
    deliveries_ms: list[float]
    missed: int
    server_cpu_ms: float
    client_cpu_ms: float
    machine_cpu_ms: float  # every process on the machine, summed over cores
    wall_ms: float


@dataclass
class RunResult:
    n: int
    connected: int = 0
    connect_failures: int = 0
    connect_s: float = 0.0
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    baseline: list[RoundResult] = field(default_factory=list)
    rounds: list[RoundResult] = field(default_factory=list)
    duplicates: int = 0
    others: int = 0
    disconnects: int = 0
    server_died: str | None = None
    machine: str = ""
    server_nofile: str = ""

    @property
    def kb_per_conn(self) -> float:
        return (self.rss_after_kb - self.rss_before_kb) / max(1, self.connected)


class Load:
    def __init__(self, base: str, server_pid: int, concurrency: int) -> None:
        import aiohttp

        self.base = base
        self.server_pid = server_pid
        self.concurrency = concurrency
        self.recorder = Recorder()
        # One shared aiohttp session for every WebSocket: no per-client connector limit
        # (aiohttp's default of 100 would stall the 101st socket) and no shared cookies.
        self.ws_http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar())
        self.api = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))

    async def close(self) -> None:
        await self.ws_http.close()
        await self.api.close()

    async def connect(self, tokens: list[str], first_index: int = 0,
                      progress: bool = False) -> tuple[list[Any], int]:
        import socketio

        sem = asyncio.Semaphore(self.concurrency)
        clients: list[Any] = []
        failures = 0
        done = 0
        started = time.perf_counter()

        async def one(i: int, token: str) -> None:
            nonlocal failures, done
            async with sem:
                for attempt in range(3):
                    # json=json: the stdlib decoder; engineio's default wrapper builds a new
                    # JSONDecoder per packet, a sizeable share of this process's CPU per event
                    client = socketio.AsyncClient(reconnection=False, http_session=self.ws_http,
                                                  handle_sigint=False, request_timeout=30,
                                                  json=json)
                    client.on("notification", partial(self.recorder.on_notification, i))
                    client.on("disconnect", partial(self.recorder.on_disconnect, i))
                    try:
                        await client.connect(self.base, auth={"token": token},
                                             transports=["websocket"], wait_timeout=30)
                    except Exception as exc:  # noqa: BLE001  (retried, then counted)
                        if attempt == 2:
                            failures += 1
                            print(f"    client {i} failed to connect: {exc!r}", flush=True)
                        await asyncio.sleep(0.5 * (attempt + 1))
                        continue
                    clients.append(client)
                    break
                done += 1
                if progress and done % 1000 == 0:
                    rate = done / (time.perf_counter() - started)
                    print(f"    {done} connected ({rate:.0f}/s)", flush=True)

        await asyncio.gather(*(one(first_index + k, t) for k, t in enumerate(tokens)))
        return clients, failures

    async def disconnect(self, clients: list[Any]) -> None:
        sem = asyncio.Semaphore(self.concurrency * 4)

        async def one(client: Any) -> None:
            async with sem:
                with suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 5)

        await asyncio.gather(*(one(c) for c in clients))

    async def round(self, token: str, category: str, at: tuple[float, float], radius: float,
                    expected: int, timeout: float) -> RoundResult:
        body = {"title": "Fan-out benchmark need", "category": category,
                "location": {"lat": at[0], "lon": at[1]}, "radius_km": radius,
                "budget": {"amount": 10000, "currency": "USD"}}
        headers = {"Authorization": f"Bearer {token}"}
        cpu_s0, cpu_c0, cpu_m0 = (cpu_seconds(self.server_pid), own_cpu_seconds(),
                                  machine_busy_seconds())
        t0 = time.perf_counter()
        async with self.api.post(self.base + "/api/v1/needs", json=body,
                                 headers=headers) as resp:
            payload = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"POST /needs -> {resp.status}: {payload}")
        t_resp = time.perf_counter()
        need_id = payload["id"]
        await self.recorder.wait_for(need_id, expected, timeout)
        t_end = time.perf_counter()
        cpu_s1, cpu_c1, cpu_m1 = (cpu_seconds(self.server_pid), own_cpu_seconds(),
                                  machine_busy_seconds())
        got = self.recorder.arrivals.pop(need_id, {})
        lat = [(t - t0) * 1000 for t in got.values()]
        missed = expected - len(got)
        return RoundResult(
            post_ms=(t_resp - t0) * 1000,
            last_ms=max(lat) if lat and missed == 0 else math.inf,
            first_ms=min(lat) if lat else math.inf,
            deliveries_ms=lat, missed=missed,
            server_cpu_ms=(cpu_s1 - cpu_s0) * 1000, client_cpu_ms=(cpu_c1 - cpu_c0) * 1000,
            machine_cpu_ms=(cpu_m1 - cpu_m0) * 1000, wall_ms=(t_end - t0) * 1000)


async def run_rounds(load: Load, count: int, pause: float, **kw: Any) -> list[RoundResult]:
    out = []
    for _ in range(count):
        out.append(await load.round(**kw))
        await asyncio.sleep(pause)  # let pings and writer greenlets settle between rounds
    return out


async def bench_one(n: int, server: Server, seeded: Seeded, args: argparse.Namespace) -> RunResult:
    res = RunResult(n)
    load = Load(server.base, server.pid, args.connect_concurrency)
    timeout = args.round_timeout or max(10.0, n / 200)
    try:
        # Baseline: one connected provider, a need that matches only them.
        base_clients, fails = await load.connect([seeded.baseline_token], first_index=-1)
        if fails:
            raise RuntimeError("baseline client could not connect")
        base_kw = dict(token=seeded.customer_token, category=BASELINE_CATEGORY, at=DALLAS,
                       radius=5.0, expected=1, timeout=timeout)
        await run_rounds(load, args.warmup, args.pause, **base_kw)
        res.baseline = await run_rounds(load, args.rounds, args.pause, **base_kw)
        await load.disconnect(base_clients)
        await asyncio.sleep(1.0)

        res.server_nofile = nofile_limit(server.pid)
        res.rss_before_kb = rss_kb(server.pid)
        t = time.perf_counter()
        clients, res.connect_failures = await load.connect(seeded.tokens, progress=n >= 2000)
        res.connect_s = time.perf_counter() - t
        res.connected = len(clients)
        # The load process now holds N clients' worth of long-lived objects; keep its cyclic
        # GC from rescanning them in the middle of a round (it would delay the timestamps).
        gc.collect()
        gc.freeze()
        await asyncio.sleep(2.0)  # let the server finish the handshakes' leftovers
        res.rss_after_kb = rss_kb(server.pid)

        kw = dict(token=seeded.customer_token, category=CATEGORY, at=AUSTIN,
                  radius=NEED_RADIUS_KM, expected=res.connected, timeout=timeout)
        load.recorder.measuring = True
        await run_rounds(load, args.warmup, args.pause, **kw)
        res.machine = f"loadavg {os.getloadavg()[0]:.2f}, {cpu_pressure()}"
        res.rounds = await run_rounds(load, args.rounds, args.pause, **kw)
        res.duplicates = load.recorder.duplicates
        res.others = load.recorder.others
        res.disconnects = load.recorder.disconnects
        load.recorder.measuring = False
        if server.proc.poll() is not None:
            res.server_died = server.output()[-2000:]
        gc.unfreeze()
        await load.disconnect(clients)
    finally:
        await load.close()
    return res


# --------------------------------------------------------------------------------------------
# report


def fmt(v: float) -> str:
    return "   miss" if math.isinf(v) else f"{v:7.1f}"


def report(res: RunResult, first: RunResult | None, cpu_note: str) -> None:
    r, b = res.rounds, res.baseline
    last = [x.last_ms for x in r]
    deliveries = [d for x in r for d in x.deliveries_ms]
    post = [x.post_ms for x in r]
    base_last = [x.last_ms for x in b]
    missed = sum(x.missed for x in r)
    print()
    print(f"=== N = {res.n} matched providers, connected {res.connected}/{res.n} "
          f"(failures {res.connect_failures}) in {res.connect_s:.1f} s "
          f"({res.connected / max(res.connect_s, 1e-9):.0f} connections/s); server "
          f"open-file limit {res.server_nofile}")
    print(f"server RSS before {res.rss_before_kb / 1024:.1f} MiB, after "
          f"{res.rss_after_kb / 1024:.1f} MiB -> {res.kb_per_conn:.1f} KB per connection "
          f"(target <= {TARGET_KB_PER_CONN:.0f})")
    print(f"{len(r)} measured rounds (+ warm-up), ms from t0 (just before the POST)"
          f"{'':6}p50      p99      max")
    rows = [
        ("baseline: 1 matched provider, last client", base_last),
        ("POST /needs response (match+insert+commit+emit)", post),
        ("first client has the event", [x.first_ms for x in r]),
        ("LAST client has the event (round latency)", last),
        (f"individual deliveries ({len(deliveries)})", deliveries),
    ]
    for label, vals in rows:
        print(f"  {label:<62}{fmt(pct(vals, 50))}  {fmt(pct(vals, 99))}  {fmt(max(vals))}")
    print(f"  missed events: {missed}   duplicates: {res.duplicates}   "
          f"other notifications: {res.others}   clients dropped during rounds: "
          f"{res.disconnects}")
    p50 = pct(last, 50)
    ratio = f"{p50 / pct(base_last, 50):.1f}x the single-client baseline"
    if first is not None and first is not res and first.rounds:
        p50_first = pct([x.last_ms for x in first.rounds], 50)
        ratio += f", {p50 / p50_first:.1f}x N={first.n}"
        ratio += f" (per-recipient ~{(p50 - p50_first) / (res.n - first.n) * 1000:.0f} us)"
    print(f"  round latency p50 = {ratio}")
    wall = sum(x.wall_ms for x in r)
    srv, cli = sum(x.server_cpu_ms for x in r), sum(x.client_cpu_ms for x in r)
    other = max(0.0, sum(x.machine_cpu_ms for x in r) - srv - cli)
    ncpu = os.cpu_count() or 1
    # /proc CPU times tick at 1/CLK_TCK (10 ms): use means over the rounds, not medians
    b_srv = sum(x.server_cpu_ms for x in b) / max(1, len(b))
    n_srv = srv / max(1, len(r))
    print(f"  CPU while rounds ran (t0 -> last delivery), in cores of this {ncpu}-CPU machine: "
          f"server {srv / wall:.2f}, load client {cli / wall:.2f}, other processes "
          f"{other / wall:.2f} ({res.machine} before the rounds).")
    print(f"  server CPU per round (mean): {n_srv:.0f} ms (baseline round {b_srv:.0f} ms) -> "
          f"~{max(0.0, n_srv - b_srv) * 1000 / max(1, res.connected):.0f} us per recipient; "
          f"load client {cli / max(1, len(r)) * 1000 / max(1, res.connected):.0f}"
          f" us per delivery. The server is one process (one core at most): its CPU per round "
          f"is the floor for the round latency on an idle machine. {cpu_note}")
    spread = sum(x.last_ms - x.first_ms for x in r if not math.isinf(x.last_ms))
    b_cli = sum(x.client_cpu_ms for x in b) / max(1, len(b))  # POST + 1 event, for scale
    if spread > 0:
        busy = max(0.0, cli - b_cli * len(r)) / spread
        print(f"  load client CPU (less a baseline round's) / (first -> last delivery) = "
              f"{busy:.0%}: near 100% "
              "means the spread after the first delivery is this one load process decoding N "
              "events one after another, not the server.")
    if other / wall > 0.3:
        print(f"  NOTE: other processes used {other / wall:.2f} cores during the rounds; "
              "wall-clock latencies here include waiting for a CPU.")
    if res.n == 1000:
        ok = pct(last, 99) <= TARGET_P99_MS_AT_1000 and missed == 0
        print(f"  TARGET 1,000 matched p99 <= {TARGET_P99_MS_AT_1000:.0f} ms: "
              f"{'MET' if ok else 'MISSED'} ({fmt(pct(last, 99)).strip()} ms)")
    if res.n >= TARGET_CONNECTIONS:
        ok = res.connected >= TARGET_CONNECTIONS and missed == 0 and not res.server_died
        print(f"  TARGET {TARGET_CONNECTIONS} connections held by one process: "
              f"{'MET' if ok else 'MISSED'}")
    ok = res.kb_per_conn <= TARGET_KB_PER_CONN
    print(f"  TARGET <= {TARGET_KB_PER_CONN:.0f} KB per connection: "
          f"{'MET' if ok else 'MISSED'} ({res.kb_per_conn:.1f} KB)")
    if res.server_died:
        print("  SERVER DIED:\n" + res.server_died)


def summary(results: list[RunResult]) -> None:
    print()
    rounds = len(results[0].rounds)
    print(f"=== summary (ms; round = t0 -> last client, {rounds} rounds per N, so its p99 is "
          f"the {'slowest round' if rounds <= 100 else '99th percentile'})")
    print(f"{'N':>6} {'conn':>6} {'KB/conn':>8} {'base p50':>9} {'POST p50':>9} "
          f"{'round p50':>10} {'round p99':>10} {'deliv p50':>10} {'deliv p99':>10} "
          f"{'missed':>7} {'x base':>7} {'x N0':>6}")
    first = results[0]
    f50 = pct([x.last_ms for x in first.rounds], 50)
    for res in results:
        last = [x.last_ms for x in res.rounds]
        deliveries = [d for x in res.rounds for d in x.deliveries_ms]
        b50 = pct([x.last_ms for x in res.baseline], 50)
        print(f"{res.n:>6} {res.connected:>6} {res.kb_per_conn:>8.1f} {b50:>9.1f} "
              f"{pct([x.post_ms for x in res.rounds], 50):>9.1f} {pct(last, 50):>10.1f} "
              f"{pct(last, 99):>10.1f} {pct(deliveries, 50):>10.1f} "
              f"{pct(deliveries, 99):>10.1f} {sum(x.missed for x in res.rounds):>7} "
              f"{pct(last, 50) / b50:>7.1f} {pct(last, 50) / f50:>6.1f}")


# --------------------------------------------------------------------------------------------
# --client node (the default): the app and a Node socket.io server side by side, driven by one
# Node load client (bench/node/client.js)

NODE_DIR = ROOT / "bench" / "node"
TARGET_P99_MS_NODE = 100.0
TARGET_RATIO_NODE = 1.5
TARGET_KB_PER_CONN_NODE = 60.0
TARGET_CONNECTIONS_NODE = 10_000


class NodeServer:
    """``node bench/node/server.js``: the baseline socket.io server."""

    def __init__(self, pin_cpu: int | None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in stop)

        def pin() -> None:
            if pin_cpu is not None:
                os.sched_setaffinity(0, {pin_cpu})

        self.proc = subprocess.Popen(["node", str(NODE_DIR / "server.js"), str(self.port)],
                                     cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     text=True, preexec_fn=pin)
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 30) -> None:
        def output() -> str:
            self.log.seek(0)
            return str(self.log.read())

        wait_serving(self.proc, self.base + "/ready", output, timeout=timeout)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# A stand-in for the app's event when the app is not in the run (``--servers node``); with the
# app, the Node server sends the first event the app sent instead.
_TEMPLATE = {"id": 1, "type": "need.matched", "created_at": "2026-12-02T10:00:00.000000+00:00",
             "text": "New need nearby: Fan-out benchmark need",
             "data": {"need": {"id": 0, "title": "Fan-out benchmark need", "description": "",
                               "category": CATEGORY, "status": "open", "place": None,
                               "location": {"lat": 30.26, "lon": -97.74, "approximate": True},
                               "radius_km": NEED_RADIUS_KM,
                               "budget": {"amount": 10000, "currency": "USD"},
                               "needed_by": None, "expires_at": "2026-12-03T10:00:00+00:00",
                               "created_at": "2026-12-02T10:00:00+00:00", "offer_count": 0,
                               "max_offers": None, "distance_band": "under 5 km",
                               "direct": False}}}


def run_node_client(n: int, servers: list[str], app: Server | None, node: NodeServer | None,
                    seeded: Seeded | None, args: argparse.Namespace,
                    pin_cpu: int | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "n": n, "rounds": args.rounds, "warmup": args.warmup, "pause_ms": args.pause * 1000,
        "timeout_ms": (args.round_timeout or max(10.0, n / 200)) * 1000,
        "connect_concurrency": args.connect_concurrency, "template": _TEMPLATE,
        "app": None, "node": None,
        "transports": ["polling", "websocket"] if args.polling_first else ["websocket"]}
    if app is not None and seeded is not None:
        config["app"] = {"url": app.base, "pid": app.pid, "tokens": seeded.tokens,
                         "customer_token": seeded.customer_token,
                         "need_body": {"title": "Fan-out benchmark need", "category": CATEGORY,
                                       "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
                                       "radius_km": NEED_RADIUS_KM,
                                       "budget": {"amount": 10000, "currency": "USD"}}}
    if node is not None:
        config["node"] = {"url": node.base, "pid": node.pid}
    if args.profile and app is not None:
        config["profile"] = ["py-spy", "record", "--pid", str(app.pid), "--rate", "500",
                             "--format", "raw", "--nonblocking", "--output", args.profile]
        if not shutil.which("py-spy"):
            config["profile"][0] = str(Path(sys.executable).parent / "py-spy")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(config, fh)
    try:
        def pin() -> None:
            if pin_cpu is not None:
                os.sched_setaffinity(0, {pin_cpu})

        # Node's default heap limit is too small for 2 x 10,000 sockets in one process.
        done = subprocess.run(["node", "--max-old-space-size=8192", str(NODE_DIR / "client.js"),
                               fh.name], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              preexec_fn=pin, check=False)
    finally:
        os.unlink(fh.name)
    if done.returncode != 0:
        raise RuntimeError(f"node load client failed ({done.returncode})")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _npm_version(package: str) -> str:
    try:
        return str(json.loads((ROOT / "node_modules" / package / "package.json").read_text())
                   ["version"])
    except OSError:
        return "missing"


def _ms(values: list[float | None], p: float) -> float:
    return pct([math.inf if v is None else v for v in values], p)


def report_node(n: int, out: dict[str, Any]) -> dict[str, Any]:
    """Print the side-by-side table of one N; return its summary row."""
    servers = out["servers"]
    print(f"\n=== N = {n}: {len(next(iter(servers.values()))['rounds'])} rounds per server, "
          f"interleaved; event {out['template_bytes']} bytes of JSON; load average "
          f"{'/'.join(f'{x:.2f}' for x in out['loadavg_before'])} before the rounds, "
          f"{'/'.join(f'{x:.2f}' for x in out['loadavg_after'])} after; {cpu_pressure()}")
    print(f"{'server':<6} {'conn':>6} {'KB/conn':>8} {'trigger p50':>12} {'first p50':>10} "
          f"{'last p50':>9} {'last p99':>9} {'deliv p50':>10} {'missed':>7} {'dup':>4} "
          f"{'CPU/round':>10}")
    row: dict[str, Any] = {"n": n}
    for name, s in servers.items():
        r = s["rounds"]
        kb = (s["rss_after_kb"] - s["rss_before_kb"]) / max(1, s["connected"])
        deliveries = [d for x in r for d in x["deliveries_ms"]]
        cpu = sum(x["server_cpu_ms"] for x in r) / max(1, len(r))
        missed = sum(x["missed"] for x in r)
        row[name] = {"kb": kb, "connected": s["connected"], "missed": missed,
                     "first50": _ms([x["first_ms"] for x in r], 50),
                     "last50": _ms([x["last_ms"] for x in r], 50),
                     "last99": _ms([x["last_ms"] for x in r], 99)}
        print(f"{name:<6} {s['connected']:>6} {kb:>8.1f} "
              f"{_ms([x['post_ms'] for x in r], 50):>12.1f} {row[name]['first50']:>10.1f} "
              f"{row[name]['last50']:>9.1f} {row[name]['last99']:>9.1f} "
              f"{pct(deliveries, 50):>10.1f} {missed:>7} {s['duplicates']:>4} {cpu:>8.0f} ms")
        if s["failures"] or s["disconnects"]:
            print(f"       connect failures {s['failures']}, dropped during rounds "
                  f"{s['disconnects']}")
    if "app" in row and "node" in row:
        a, b = row["app"], row["node"]
        row["ratio50"], row["ratio99"] = a["last50"] / b["last50"], a["last99"] / b["last99"]
        print(f"app / node, last receipt: p50 {row['ratio50']:.2f}x, p99 {row['ratio99']:.2f}x")
    if "app" in row:
        a = row["app"]
        if n == 1000 and "ratio99" in row:
            ok = (a["last99"] <= TARGET_P99_MS_NODE and row["ratio99"] <= TARGET_RATIO_NODE
                  and a["missed"] == 0)
            print(f"TARGET N=1,000 app last receipt p99 <= {TARGET_P99_MS_NODE:.0f} ms and <= "
                  f"{TARGET_RATIO_NODE}x Node: {'MET' if ok else 'MISSED'} "
                  f"({a['last99']:.1f} ms, {row['ratio99']:.2f}x)")
        if n >= TARGET_CONNECTIONS_NODE:
            ok = a["connected"] >= TARGET_CONNECTIONS_NODE and a["missed"] == 0
            print(f"TARGET {TARGET_CONNECTIONS_NODE:,} connections held by one app process: "
                  f"{'MET' if ok else 'MISSED'} ({a['connected']})")
        ok = a["kb"] <= TARGET_KB_PER_CONN_NODE
        print(f"TARGET app <= {TARGET_KB_PER_CONN_NODE:.0f} KB per connection: "
              f"{'MET' if ok else 'MISSED'} ({a['kb']:.1f} KB)")
    print(f"load client CPU (the whole run): {out['client_cpu_ms'] / 1000:.1f} s", flush=True)
    return row


def per_round(out: dict[str, Any]) -> None:
    """Each server's rounds in the order they ran: POST time / last receipt, in ms."""
    for name, s in out["servers"].items():
        print(f"{name} rounds (POST/last ms): " + " ".join(
            f"{x['post_ms']:.0f}/{x['last_ms']:.0f}" for x in s["rounds"]))


def main_node(sizes: list[str | int], args: argparse.Namespace, pins: tuple[int | None, ...]
              ) -> int:
    servers = [x.strip() for x in args.servers.split(",") if x.strip()]
    if not set(servers) <= {"app", "node"} or not servers:
        raise SystemExit("--servers takes app, node or app,node")
    if not (NODE_DIR.parent.parent / "node_modules" / "socket.io").is_dir():
        raise SystemExit("node_modules/socket.io is missing: run `make install`")
    pin_app, pin_node, pin_client = pins
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        for n in (int(x) for x in sizes):
            with fresh_database(args.postgres, Path(tmp), n) as url:
                seeded, app, node = None, None, None
                try:
                    if "app" in servers:
                        t = time.perf_counter()
                        seeded = seed(url, n, rng)
                        print(f"\n[N={n}] seeded {n} providers in {time.perf_counter() - t:.1f} s",
                              flush=True)
                        app = Server(url, pin_app)
                        app.wait_ready()
                    if "node" in servers:
                        node = NodeServer(pin_node)
                        node.wait_ready()
                    print(f"[N={n}] servers up ({', '.join(servers)}); loadavg "
                          f"{os.getloadavg()[0]:.2f}; running the Node load client", flush=True)
                    out = run_node_client(n, servers, app, node, seeded, args, pin_client)
                    if app is not None and app.proc.poll() is not None:
                        print("APP SERVER DIED:\n" + app.output()[-3000:])
                except BaseException:
                    if app is not None and app.proc.poll() is not None:
                        print(app.output()[-3000:], file=sys.stderr)
                    raise
                finally:
                    for srv in (app, node):
                        if srv is not None:
                            srv.stop()
            rows.append(report_node(n, out))
            if args.per_round:
                per_round(out)
    if len(rows) > 1:
        print("\n=== summary (ms; last = t0 -> the last socket has the event)")
        for row in rows:
            parts = [f"N={row['n']}"]
            for name in ("app", "node"):
                if name in row:
                    x = row[name]
                    parts.append(f"{name}: first {x['first50']:.1f}, last p50 {x['last50']:.1f} "
                                 f"p99 {x['last99']:.1f}, {x['kb']:.1f} KB/conn, "
                                 f"missed {x['missed']}")
            if "ratio50" in row:
                parts.append(f"ratio p50 {row['ratio50']:.2f}x p99 {row['ratio99']:.2f}x")
            print("  " + "; ".join(parts))
    return 0


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=("node", "python"), default="node",
                        help="node (default): the app and a Node socket.io server side by side, "
                             "one Node load client; python: the app alone, the asyncio client")
    parser.add_argument("--servers", default="app,node",
                        help="with --client node: app, node or app,node (default)")
    parser.add_argument("--clients", default=None,
                        help="comma-separated N values (default 1000 with --client node, "
                             "100,1000,5000 with python)")
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds per N")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between rounds")
    parser.add_argument("--connect-concurrency", type=int, default=100,
                        help="connections in flight at once while connecting")
    parser.add_argument("--postgres", nargs="?", metavar="ADMIN_URL",
                        const=os.environ.get("TEST_POSTGRES_URL",
                                             "postgresql://postgres@127.0.0.1:5432/test"),
                        help="use a fresh PostgreSQL database created through ADMIN_URL "
                             "instead of SQLite")
    parser.add_argument("--pin", action="store_true",
                        help="pin the server to CPU 0 and this load process to CPU 1")
    parser.add_argument("--round-timeout", type=float, default=0,
                        help="seconds to wait for the last delivery (default max(10, N/200))")
    parser.add_argument("--polling-first", action="store_true",
                        help="with --client node: connect as a browser does, long-polling "
                             "first and then the upgrade to WebSocket")
    parser.add_argument("--profile", metavar="FILE",
                        help="with --client node: py-spy (pip install py-spy) records the app "
                             "server during the measured rounds into FILE (collapsed stacks)")
    parser.add_argument("--per-round", action="store_true",
                        help="with --client node: also print every round's POST time and last "
                             "receipt, in the order they ran (where a p99 comes from)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    clients = args.clients or ("1000" if args.client == "node" else "100,1000,5000")
    sizes = [int(x) for x in clients.split(",") if x.strip()]

    soft, hard = raise_nofile(max(sizes) * 4 + 1024)
    ncpu = os.cpu_count() or 1
    if args.client == "node":
        pins = (0, 0, 1) if args.pin and ncpu >= 2 else (None, None, None)
        print(f"fan-out benchmark, app vs Node: N={sizes}, {args.rounds} rounds per server "
              f"(+{args.warmup} warm-up), interleaved; servers {args.servers}; database "
              f"{'PostgreSQL' if args.postgres else 'SQLite'}; app `python -m marketplace.serve`"
              f" (gevent + gevent-websocket), Node `bench/node/server.js` (socket.io "
              f"{_npm_version('socket.io')}), load client `bench/node/client.js` "
              f"(socket.io-client {_npm_version('socket.io-client')}, WebSocket); "
              f"RLIMIT_NOFILE {soft}/{hard}; {ncpu} CPUs"
              + (" (pinned: servers CPU 0, client CPU 1)" if pins[0] is not None else "")
              + f"; loadavg {'/'.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        return main_node(list(sizes), args, pins)
    pin_server = None
    if args.pin and ncpu >= 2:
        os.sched_setaffinity(0, {1})
        pin_server = 0
    cpu_note = (f"Server and load client share this {ncpu}-core machine"
                + (" (pinned: server CPU 0, client CPU 1)." if pin_server is not None
                   else " (not pinned); each is one Python process, so at most one core each."))
    print(f"fan-out benchmark: N={sizes}, {args.rounds} rounds (+{args.warmup} warm-up), "
          f"database {'PostgreSQL' if args.postgres else 'SQLite'}, server "
          f"`python -m marketplace.serve` (gevent + gevent-websocket), one asyncio load "
          f"process; RLIMIT_NOFILE {soft}/{hard} (inherited by the server); {ncpu} CPUs, "
          f"loadavg {os.getloadavg()[0]:.2f}", flush=True)
    if soft < max(sizes) + 200:
        print(f"WARNING: open-file limit {soft} is too low for N={max(sizes)}", flush=True)

    rng = random.Random(args.seed)
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        for n in sizes:
            with fresh_database(args.postgres, Path(tmp), n) as url:
                t = time.perf_counter()
                seeded = seed(url, n, rng)
                print(f"\n[N={n}] seeded {n} providers in {time.perf_counter() - t:.1f} s; "
                      "starting server", flush=True)
                server = Server(url, pin_server)
                try:
                    server.wait_ready()
                    res = asyncio.run(bench_one(n, server, seeded, args))
                except BaseException:
                    if server.proc.poll() is not None:
                        print(server.output()[-3000:], file=sys.stderr)
                    raise
                finally:
                    server.stop()
            results.append(res)
            report(res, results[0], cpu_note)
    summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
