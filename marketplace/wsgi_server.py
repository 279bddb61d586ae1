"""The WSGI server's request handler, shared by ``python -m marketplace.serve`` and gunicorn.

Both servers parse HTTP with gevent's pywsgi (gunicorn's gevent-websocket worker hands each
connection to a pywsgi handler, so gunicorn's own parser and ``limit_request_*`` settings are not
in play). pywsgi refuses some requests before any application code runs — a request line over
8 KB (414), a malformed request line, header or Content-Length (400) — and answers them with an
empty body and no content type. This handler keeps those limits and has the app render the
refusal instead, so it is the one JSON error under ``/api/`` and the styled error page elsewhere
(``errors.SERVER_REFUSAL``). Header lines over 64 KB and more than 100 headers become 431.
"""

from __future__ import annotations

import http.client
import logging
from typing import Any

from geventwebsocket.gunicorn.workers import GeventWebSocketWorker
from geventwebsocket.handler import WebSocketHandler
from werkzeug.test import EnvironBuilder, run_wsgi_app

from marketplace.errors import SERVER_REFUSAL

HEADERS_TOO_LARGE = 431
log = logging.getLogger(__name__)


# The read buffer of each connection's socket. gevent's default is io.DEFAULT_BUFFER_SIZE
# (8 KiB), allocated up front and kept for as long as the connection lives: a WebSocket that
# reads only small frames holds it for hours, about an eighth of what a connection costs
# (docs/performance.md). A request line or headers longer than this are read in more calls.
READ_BUFFER_BYTES = 2048


class Handler(WebSocketHandler):
    """gevent-websocket's handler; what the server refuses is answered by the app."""

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        super().__init__(sock, address, server,
                         rfile if rfile is not None else sock.makefile("rb", READ_BUFFER_BYTES))

    def handle_one_request(self) -> Any:
        result = super().handle_one_request()
        if isinstance(result, tuple):  # (status, raw response): refused before the app ran
            status, plain = result
            return status, self._rendered_refusal(int(status), plain)
        return result

    def _handle_client_error(self, ex: Exception) -> tuple[str, bytes]:
        too_large = isinstance(ex, http.client.HTTPException) or (
            getattr(self.headers, "status", "") == "Line too long")
        if too_large:  # more than 100 headers, or one over 64 KB
            self.log_error("Request header fields too large (from %s): %s",
                           self.client_address, ex)
            return str(HEADERS_TOO_LARGE), b""
        return super()._handle_client_error(ex)

    def _refused_path(self) -> str:
        """The path of the refused request as far as it could be read ('/' if none)."""
        words = (self.requestline or "").split()
        target = words[1] if len(words) >= 2 else "/"
        path = target.split("?", 1)[0]
        return path[:1024] if path.startswith("/") else "/"

    def _rendered_refusal(self, status: int, plain: bytes) -> bytes:
        """The app's response for a refusal with ``status``, as bytes for the socket (the
        connection closes after it); the server's plain answer if the app cannot render one."""
        try:
            environ = EnvironBuilder(path=self._refused_path()).get_environ()
            environ[SERVER_REFUSAL] = status
            app_iter, status_line, headers = run_wsgi_app(self.server.application, environ,
                                                          buffered=True)
            body = b"".join(app_iter)
        except Exception:  # the server's own answer is better than none
            log.exception("could not render the refusal of a request (%s)", status)
            return plain or f"HTTP/1.1 {status} Error\r\nConnection: close\r\n\r\n".encode()
        lines = [f"HTTP/1.1 {status_line}"]
        lines += [f"{name}: {value}" for name, value in headers.items()
                  if name.lower() not in {"connection", "content-length"}]
        lines += ["Connection: close", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Worker(GeventWebSocketWorker):
    """gunicorn's gevent-websocket worker with :class:`Handler` (``gunicorn.conf.py``)."""

    wsgi_handler = Handler
