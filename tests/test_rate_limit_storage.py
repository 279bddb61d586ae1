"""``memory://`` rate-limit counts (``extensions.InlineMemoryStorage``): counting a request never
starts a thread or switches greenlets, and counts nobody reads again are still swept. What the
limits themselves refuse is tried in test_rate_limits.py, on this storage."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from limits.storage import memory as limits_memory

from marketplace import extensions
from marketplace.extensions import InlineMemoryStorage, limiter


def test_memory_uri_counts_in_the_inline_storage(app: Flask) -> None:
    assert type(limiter.storage) is InlineMemoryStorage


def counted_thread_starts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    started: list[Any] = []
    start = threading.Thread.start

    def counting(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting)
    return started


def test_counting_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = InlineMemoryStorage()
    storage.timer.join()  # the one limits' own __init__ starts has run out
    started = counted_thread_starts(monkeypatch)
    for i in range(50):
        assert storage.incr("fixed", 60) == i + 1
        assert storage.acquire_entry("moving", 100, 60)
        storage.decr("fixed")
        storage.incr("fixed", 60)
    assert started == []


def test_counts_nobody_reads_again_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    clock = SimpleNamespace(time=lambda: now[0], monotonic=lambda: now[0])
    monkeypatch.setattr(limits_memory, "time", clock)
    monkeypatch.setattr(extensions, "time", clock)
    storage = InlineMemoryStorage()
    storage.incr("ip:198.51.100.1", 1)  # a one-second window, never counted again
    storage.acquire_entry("moving:198.51.100.1", 5, 1)
    storage.incr("user:1", 3600)

    now[0] += 0.5  # within SWEEP_SECONDS of the last sweep: nothing swept yet
    storage.incr("user:1", 3600)
    assert "ip:198.51.100.1" in storage.storage

    now[0] += 1.0
    assert storage.incr("user:1", 3600) == 3  # the sweep keeps what has not expired
    assert "ip:198.51.100.1" not in storage.storage
    assert "ip:198.51.100.1" not in storage.expirations
    assert not storage.events.get("moving:198.51.100.1")
    assert storage.get("user:1") == 3


GEVENT_COUNTING = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import sys, greenlet, gevent
    from limits.storage import storage_from_string
    import marketplace.extensions  # registers inline-memory://

    storage = storage_from_string(sys.argv[1])
    gevent.sleep(0.05)  # the timer of limits' own __init__ has run out
    switches, counting = [], []
    def trace(event, args):
        if event == "switch" and counting and args[0] is counting[0]:
            switches.append(args[1])
    def count():
        counting.append(gevent.getcurrent())
        for _ in range(200):
            storage.incr("user:1", 60)
            storage.acquire_entry("moving:1", 1000, 60)
        counting.clear()
    greenlet.settrace(trace)
    gevent.spawn(count).join()
    greenlet.settrace(None)
    print(len(switches))
""")


@pytest.mark.parametrize("uri, yields", [("inline-memory://", False), ("memory://", True)])
def test_a_count_under_gevent_never_switches_to_the_event_loop(uri: str, yields: bool) -> None:
    """The server's case: a request greenlet counting its hits. limits' own memory storage
    (``memory://`` there) is the control: it switches, so this test can see a switch."""
    done = subprocess.run([sys.executable, "-c", GEVENT_COUNTING, uri], capture_output=True,
                          text=True, timeout=60, check=True)
    switched = int(done.stdout.strip().splitlines()[-1])
    assert (switched > 0) is yields, (uri, switched)
