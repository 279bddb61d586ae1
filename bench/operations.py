"""What each operation of the load mix costs the server, alone: CPU time and SQL statements.

    .venv/bin/python -m bench.operations [--needs 20] [--reps 100] [--only TEXT] [--instructions]

``bench/load.py`` measures the whole mix against gunicorn; this says which operations of it
cost the most, without the network or the other users, so a change to one of them can be
measured on its own. It

1. seeds a temporary SQLite file as the load test does (``bench.load.seed``: 16 customers,
   16 providers around Austin, an API token each), every rate limit raised;
2. through the Flask test client, posts ``--needs`` needs per customer, has every provider
   offer on up to 6 needs of its feed and the customers answer 100 offers with a message, and
   signs a customer and a provider in through the sign-in form; a second customer posts the
   needs the provider offers on while the offers are timed (one per call);
3. with the garbage collector set as the server sets it (``gunicorn.conf.py``: the heap so far
   frozen, collections rarer), times each operation of the mix ``--reps`` times after 5
   warm-up calls (CPU time of this process, ``time.process_time``: the app runs in it) and
   counts the SQL statements one call runs; the baseline, in the same run, is
   ``GET /healthz`` (no statement: what every request costs in Flask and its extensions), and
   each operation's ratio to it is printed.

With ``--instructions`` it runs itself under valgrind's callgrind and counts the machine
instructions of each call instead of timing it: on a shared virtual machine whose speed
drifts by up to 2x within the hour, CPU time cannot tell a 5% change from noise, while the
same code counts the same instructions within about 1% whatever else the machine does. The
app runs some 50 times slower there, so fewer calls are counted (``--reps``, 20 is plenty).

The figures are in docs/performance.md ("Load test").
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.common import load_note, out
from bench.load import AUSTIN, PASSWORD, SPREAD_KM, point_near, rate_limit_settings, seed

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CALLGRIND_DIR = "BENCH_OPERATIONS_CALLGRIND"  # set in the run under valgrind: where it dumps


def under_callgrind() -> None:
    """Run this benchmark again under callgrind, counting nothing until an operation's calls
    start (``Counter``); the same hash seed every run, so dict orders do not move the count."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    where = tempfile.mkdtemp(prefix="bench-operations-callgrind-")
    env = {**os.environ, CALLGRIND_DIR: where, "PYTHONHASHSEED": "0"}
    try:
        done = subprocess.run([valgrind, "--tool=callgrind", "--instr-atstart=no",
                               f"--callgrind-out-file={where}/callgrind.out", "--log-file="
                               f"{where}/valgrind.log", sys.executable, "-m", "bench.operations",
                               *sys.argv[1:]], env=env, check=False)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    raise SystemExit(done.returncode)


class Counter:
    """Instructions per call of an operation, in this process run under callgrind: counting
    is switched on for the calls, then the count is dumped to a file of its own and read."""

    def __init__(self, where: str) -> None:
        self.where, self.dumps = where, 0

    def _control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True,
                       capture_output=True)

    def per_call(self, call: Callable[[], Any], reps: int) -> float:
        self._control("--instr=on")
        for _ in range(reps):
            call()
        self._control("--instr=off")
        self._control("--dump")
        self.dumps += 1
        with open(f"{self.where}/callgrind.out.{self.dumps}") as dumped:
            total = re.search(r"^totals: (\d+)", dumped.read(), re.M)
        if total is None:
            raise SystemExit(f"no totals in callgrind's dump {self.dumps}")
        return int(total.group(1)) / reps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--needs", type=int, default=20, help="needs posted per customer (20)")
    p.add_argument("--reps", type=int,
                   help="timed calls per operation (100; 20 with --instructions)")
    p.add_argument("--only", help="only the operations whose name contains this")
    p.add_argument("--show-sql", action="store_true",
                   help="print the statements of one call of each operation measured")
    p.add_argument("--instructions", action="store_true",
                   help="count instructions per call under valgrind's callgrind, not CPU time")
    args = p.parse_args()
    args.reps = args.reps or (20 if args.instructions else 100)
    if args.instructions and not os.environ.get(CALLGRIND_DIR):
        under_callgrind()  # runs this again under valgrind; does not return
    for name in rate_limit_settings():
        os.environ[name] = "1000000 per hour"
    fd, path = tempfile.mkstemp(prefix="bench-operations-", suffix=".sqlite3")
    os.close(fd)
    try:
        run(f"sqlite:///{path}", args)
    finally:
        os.unlink(path)


def run(url: str, args: argparse.Namespace) -> None:
    from sqlalchemy import event

    from marketplace import create_app
    from marketplace.extensions import db

    seeded = seed(url, 16, 16, random.Random(1))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REDIS_URL": None})
    client = app.test_client()
    rng = random.Random(2)

    def bearer(account: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.token}"}

    needs: dict[int, list[int]] = {a.user_id: [] for a in seeded.customers}
    owner: dict[int, Any] = {}

    def post_need(account: Any, category: str | None = None) -> Any:
        lat, lon = point_near(*AUSTIN, SPREAD_KM, rng)
        r = client.post("/api/v1/needs", headers=bearer(account), json={
            "title": f"Load test need {rng.randrange(10**6)}",
            "description": "Posted by the benchmark; nothing to do here.",
            "category": category or rng.choice(seeded.categories),
            "location": {"lat": lat, "lon": lon},
            "radius_km": 30.0, "budget": {"amount": 5000, "currency": "USD"}})
        if r.status_code != 201:
            raise SystemExit(f"posting a need failed: {r.status_code} {r.get_data(as_text=True)}")
        needs[account.user_id].append(r.json["id"])
        owner[r.json["id"]] = account
        return r

    for _ in range(args.needs):
        for account in seeded.customers:
            post_need(account)
    offers, seen = [], {}
    for pro in seeded.providers:
        items = client.get("/api/v1/feed?limit=50", headers=bearer(pro)).json["items"]
        seen[pro.user_id] = [item["id"] for item in items]
        for need_id in seen[pro.user_id][:6]:
            r = client.post(f"/api/v1/needs/{need_id}/offers", headers=bearer(pro),
                            json={"message": "I can do this."})
            if r.status_code == 201:
                offers.append((need_id, r.json["id"]))
    for need_id, offer_id in offers[:100]:
        client.post(f"/api/v1/offers/{offer_id}/messages", headers=bearer(owner[need_id]),
                    json={"body": "Thanks, when could you come?"})

    def browser(account: Any) -> Any:
        b = app.test_client()
        token = CSRF.search(b.get("/signin").get_data(as_text=True))
        r = b.post("/signin", data={"email": account.email, "password": PASSWORD,
                                    "csrf_token": token.group(1) if token else ""})
        if r.status_code != 302:
            raise SystemExit(f"sign-in failed: {r.status_code}")
        return b

    customer = seeded.customers[0]
    pro = max(seeded.providers, key=lambda p: len(seen[p.user_id]))
    web_customer, web_pro = browser(customer), browser(pro)
    mine, theirs = needs[customer.user_id], seen[pro.user_id]
    thread_need, thread = offers[0]
    # needs of the provider's category for it to offer on, one per call (a second customer's,
    # so the first one's list keeps its length)
    fresh = [post_need(seeded.customers[1], pro.category).json["id"]
             for _ in range(args.reps + 6)]
    out(f"bench.operations: SQLite, {sum(map(len, needs.values())):,} needs, {len(offers)} "
        f"offers, {args.reps} calls per operation; "
        + ("instructions counted by valgrind's callgrind" if os.environ.get(CALLGRIND_DIR)
           else load_note()))

    ops: dict[str, Callable[[], Any]] = {
        "GET /healthz (baseline)": lambda: client.get("/healthz"),
        "GET /api/v1/categories": lambda: client.get("/api/v1/categories"),
        "GET /api/v1/notifications": lambda: client.get("/api/v1/notifications?limit=20",
                                                        headers=bearer(customer)),
        "GET /api/v1/needs?mine=true": lambda: client.get(
            "/api/v1/needs?mine=true&status=open", headers=bearer(customer)),
        "GET /api/v1/needs/[id]/offers": lambda: client.get(
            f"/api/v1/needs/{rng.choice(mine)}/offers", headers=bearer(customer)),
        "GET /api/v1/feed": lambda: client.get("/api/v1/feed?limit=20", headers=bearer(pro)),
        "GET /api/v1/needs/[id]": lambda: client.get(f"/api/v1/needs/{rng.choice(theirs)}",
                                                     headers=bearer(pro)),
        "GET /api/v1/offers?status=pending": lambda: client.get(
            "/api/v1/offers?status=pending", headers=bearer(pro)),
        "GET /api/v1/providers/[handle]": lambda: client.get(
            f"/api/v1/providers/{rng.choice(seeded.providers).handle}"),
        "POST /api/v1/needs": lambda: post_need(rng.choice(seeded.customers)),
        "POST /api/v1/offers/[id]/messages": lambda: client.post(
            f"/api/v1/offers/{thread}/messages", headers=bearer(owner[thread_need]),
            json={"body": "And the price?"}),
        "POST /api/v1/needs/[id]/offers": lambda: client.post(
            f"/api/v1/needs/{fresh.pop()}/offers", headers=bearer(pro),
            json={"message": "I can do this."}),
        "GET / (customer)": lambda: web_customer.get("/"),
        "GET /needs (customer)": lambda: web_customer.get("/needs"),
        "GET /needs/[id] (customer)": lambda: web_customer.get(f"/needs/{rng.choice(mine)}"),
        "GET /needs/[id] (provider)": lambda: web_pro.get(f"/needs/{rng.choice(theirs)}"),
        "GET /feed (provider)": lambda: web_pro.get("/feed"),
        "GET /p/[handle]": lambda: web_customer.get(
            f"/p/{rng.choice(seeded.providers).handle}"),
    }
    with app.app_context():
        engine = db.engine
    counted = [0]
    shown: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counted[0] += 1
        shown.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    # the collector as the server runs it (gunicorn.conf.py): without this, a full collection
    # of the seeded heap landed in whichever operation was running and moved its figure by
    # up to a third between two runs of the same code
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    counter = Counter(os.environ[CALLGRIND_DIR]) if os.environ.get(CALLGRIND_DIR) else None
    unit = "M instr" if counter else "CPU ms"
    out(f"  {'operation':36s} {unit:>8s} {'x base':>7s} {'statements':>10s}  status")
    base = None
    for name, call in ops.items():
        if args.only and args.only not in name and base is not None:
            continue
        for _ in range(5):
            response = call()
        if counter:
            figure = counter.per_call(call, args.reps) / 1e6
        else:
            times = []
            for _ in range(args.reps):
                t0 = time.process_time()
                call()
                times.append(time.process_time() - t0)
            figure = statistics.mean(times) * 1000
        before = counted[0]
        shown.clear()
        call()
        statements = counted[0] - before
        base = base or figure
        out(f"  {name:36s} {figure:8.2f} {figure / base:7.1f} {statements:10d}  "
            f"{response.status_code}")
        if args.show_sql:
            for statement in shown:
                out("      " + " ".join(statement.split())[:300])


if __name__ == "__main__":
    main()
