"""A real local HTTP server that receives webhook deliveries: it answers with the statuses it
is told to (one per request, then 200), and keeps every request it got with the status it
answered. While ``hold`` is set, requests are kept but not answered until it is cleared (a
delivery caught in flight)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    status: int | None = None  # what it was answered; None while held (or never, if dropped)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.released.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                got = Received(self.path, dict(self.headers), body)
                with receiver.lock:
                    receiver.received.append(got)
                    held = not receiver.released.is_set()
                if held:
                    receiver.released.wait()
                    return  # its sender was made to give up meanwhile: nothing is answered
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    got.status = status
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answered {status}".encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def hold(self) -> None:
        """Keep the requests that come from now on unanswered, until ``release``."""
        self.released.clear()

    def release(self) -> None:
        """Let held requests go (unanswered: their connection is closed)."""
        self.released.set()


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        receiver.server.shutdown()
        receiver.server.server_close()
