"""What every benchmark prints and runs beside itself: output, the machine's load, percentiles,
a free port, waiting for a server process to answer, and resetting id sequences after a bulk
load with explicit ids."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def out(msg: str = "") -> None:
    print(msg, flush=True)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``, in any order; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_serving(proc: subprocess.Popen[Any], url: str, output: Callable[[], str], *,
                 timeout: float = 30, ready: Callable[[], bool] = lambda: True) -> None:
    """Return once ``url`` answers 200 (and ``ready()`` holds); raise with the process's
    ``output()`` when it exits first or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, proc.args))} exited:\n{output()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200 and ready():
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in {timeout:.0f} s:\n{output()}")
        time.sleep(0.05)  # polling for the port to open; no event to await


def reset_id_sequences(session: Any, tables: Iterable[str]) -> None:
    """On PostgreSQL, move each table's id sequence past the ids a bulk load wrote itself (so
    the app's own inserts do not collide); nothing to do on SQLite. Commits."""
    if session.get_bind().dialect.name != "postgresql":
        return
    from sqlalchemy import text

    for table in tables:
        session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT max(id) FROM {table}))"))
    session.commit()
