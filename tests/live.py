"""Real server processes for end-to-end tests: ``python -m marketplace.serve`` (or gunicorn as
in production) on a free port."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import engineio
import requests
import socketio
from conftest import RATE_LIMITS
from pages import csrf_token

ROOT = Path(__file__).resolve().parent.parent
SERVE = (sys.executable, "-m", "marketplace.serve")
GUNICORN = (sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """``python -m marketplace.serve`` (or ``command``) on a migrated database, on a fixed port:
    started, SIGKILLed and started again where it was (its clients reconnect to it)."""

    def __init__(self, database_url: str, port: int | None = None,
                 command: tuple[str, ...] = SERVE, **env: str) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.command = command
        self.env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(self.port),
                    "HOST": "127.0.0.1", "SECRET_KEY": "live-test-secret",
                    # limits no ordinary test reaches (every client is 127.0.0.1); a test of a
                    # limit passes its own in ``env``
                    **dict.fromkeys(RATE_LIMITS, "100000 per hour"), **env}
        self.proc: subprocess.Popen[str] | None = None
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in close)

    def start(self) -> None:
        """Start the process and return once it answers."""
        self.proc = subprocess.Popen(list(self.command), cwd=ROOT, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if requests.get(self.base + "/api/v1/categories", timeout=1).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening / booting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling for the port to open; no event to await here

    def kill(self) -> None:
        """SIGKILL: nothing of the process gets to clean up."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        self.stop()
        self.log.close()


@contextmanager
def server(database_url: str, port: int | None = None, command: tuple[str, ...] = SERVE,
           **env: str) -> Iterator[str]:
    """Start a server process on a migrated database; yield its base URL; stop it. Give
    ``port`` to start one again where a stopped one was (clients reconnect to it)."""
    process = LiveServer(database_url, port, command, **env)
    try:
        process.start()
        yield process.base
    finally:
        process.close()


class Api:
    """A tiny HTTP client speaking for one user of a live server."""

    def __init__(self, base: str, email: str, name: str = "Live User",
                 password: str = "live-password-1") -> None:
        self.base, self.password = base, password
        r = requests.post(f"{base}/api/v1/users",
                          json={"email": email, "password": password, "name": name}, timeout=10)
        assert r.status_code == 202, r.text
        r = requests.post(f"{base}/api/v1/tokens", json={"email": email, "password": password},
                          timeout=10)
        assert r.status_code == 201, r.text
        self.token = r.json()["token"]
        self.user = self.call("GET", "/me").json()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.base + "/api/v1" + path, timeout=10,
                                headers={"Authorization": f"Bearer {self.token}"}, **kwargs)

    def sign_in_to_pages(self) -> requests.Session:
        """An HTTP session signed in to the web pages (a session cookie), through the sign-in
        form and its CSRF token as a browser does."""
        session = requests.Session()
        form = {"email": self.user["email"], "password": self.password,
                "csrf_token": csrf_token(session.get(self.base + "/signin", timeout=10))}
        r = session.post(self.base + "/signin", data=form, timeout=10, allow_redirects=False)
        assert (r.status_code, r.headers.get("Location")) == (302, "/"), r.text
        return session


class _InOrderEngineIO(engineio.Client):
    """python-engineio's client runs the handler of every message it receives in a new
    thread, so two events that arrive in one order can reach a handler in the other. The
    tests that check the server's order per connection read messages here, one at a time on
    the thread that reads the socket: in the order they arrived."""

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    """A Socket.IO client whose handlers see events in arrival order (their handlers must not
    wait for another message from the server: they run on the reading thread)."""

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InOrderEngineIO


class Listener:
    """A real Socket.IO client collecting ``notification`` events into a queue (and the
    live-only ``need.closed`` signals into another)."""

    def __init__(self, base: str, auth: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.closed: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = InOrderClient(reconnection=False)
        self.client.on("notification", self.events.put)
        self.client.on("need.closed", self.closed.put)
        self.client.connect(base, auth=auth, headers=headers or {}, transports=["websocket"],
                            wait_timeout=10)

    def next(self, timeout: float = 10) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def until(self, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
        """Collect events up to and including the first that satisfies ``predicate``."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            seen.append(event)
            if predicate(event):
                return seen

    def close(self) -> None:
        self.client.disconnect()
