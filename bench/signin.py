"""Sign-in benchmark: what a burst of bogus sign-ins does to everybody else's requests.

    .venv/bin/python -m bench.signin [--attackers 16] [--requests 200]

Two real server processes (``python -m marketplace.serve``, gevent) on one migrated SQLite
file, with argon2 at the library's production parameters: one as it ships (argon2 runs in
gevent's thread pool, ``accounts.services.off_the_loop``) and, as the baseline in the same run,
one with ``PASSWORD_HASH_INLINE=1`` (argon2 on the event loop, as before). For each: the median
and p90 latency of ``GET /api/v1/categories`` (a cheap request) from one client, first on a
quiet server, then while ``--attackers`` threads post wrong passwords to ``POST
/api/v1/tokens`` as fast as they are answered. Rate limits are switched off for the run (they
would answer most guesses with 429 before argon2 runs, which is what they are for, but not what
this measures). The ratio printed is baseline / shipped median under attack.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.common import free_port, wait_serving

ROOT = Path(__file__).resolve().parent.parent


class Server:
    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in stop)
        environment = {**os.environ, "DATABASE_URL": database_url, "PORT": str(self.port),
                       "HOST": "127.0.0.1", "SECRET_KEY": "bench-secret",
                       "EXPIRY_INTERVAL_SECONDS": "3600", "RATELIMIT_ENABLED": "0", **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "marketplace.serve"], cwd=ROOT,
                                     env=environment, stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True)
        def output() -> str:
            self.log.seek(0)
            return str(self.log.read())

        wait_serving(self.proc, self.base + "/api/v1/categories", output)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


def latencies(base: str, n: int) -> list[float]:
    session = requests.Session()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r = session.get(base + "/api/v1/categories", timeout=60)
        out.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text
    return out


def under_attack(base: str, email: str, attackers: int, n: int) -> tuple[list[float], int]:
    stop = threading.Event()
    guesses = [0] * attackers

    def attack(i: int) -> None:
        session = requests.Session()
        while not stop.is_set():
            r = session.post(base + "/api/v1/tokens", timeout=60,
                             json={"email": email, "password": f"wrong-{i}-{guesses[i]}"})
            assert r.status_code in (401, 429), r.text
            guesses[i] += 1

    threads = [threading.Thread(target=attack, args=(i,), daemon=True) for i in range(attackers)]
    for t in threads:
        t.start()
    while sum(guesses) < attackers:  # every attacker has been answered once: the burst is on
        time.sleep(0.01)  # polling another thread's counter; nothing to await
    try:
        return latencies(base, n), sum(guesses)
    finally:
        stop.set()
        for t in threads:
            t.join()


def summary(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[int(0.9 * (len(values) - 1))]
    return f"median {statistics.median(values):8.1f} ms   p90 {p90:8.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attackers", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'signin.sqlite3'}"
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        results = {}
        for label, extra in (("shipped (thread pool)", {}),
                             ("baseline (on the loop)", {"PASSWORD_HASH_INLINE": "1"})):
            server = Server(url, **extra)
            try:
                email = f"victim-{label.split()[0]}@example.com"
                r = requests.post(server.base + "/api/v1/users", timeout=30, json={
                    "email": email, "password": "the-right-password", "name": "Vic Tim"})
                assert r.status_code == 202, r.text
                quiet = latencies(server.base, args.requests)
                started = time.perf_counter()
                loaded, guesses = under_attack(server.base, email, args.attackers, args.requests)
                seconds = time.perf_counter() - started
                results[label] = statistics.median(loaded)
                print(f"{label:24} quiet:        {summary(quiet)}")
                print(f"{'':24} {args.attackers} attackers: {summary(loaded)}"
                      f"   ({guesses} wrong guesses in {seconds:.1f} s)")
            finally:
                server.stop()
        shipped, baseline = results.values()
        print(f"median under attack: baseline / shipped = {baseline / shipped:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
