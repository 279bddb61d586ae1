"""A map tile server on a free local port: every ``/{z}/{x}/{y}.png`` is one small PNG, and it
counts what it served. Tests point ``MAP_TILE_URL`` at it (``conftest.map_tiles``), so no test
ever asks OpenStreetMap for a tile; so does ``bench.lighthouse`` by default, so its pages load
their tiles as they would in production (a machine without internet would otherwise score
the console errors of tiles it cannot reach)."""

from __future__ import annotations

import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TILE_PATH = re.compile(r"/(\d+)/(\d+)/(\d+)\.png")


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (256, 256), (226, 232, 240)).save(out, "PNG")
    return out.getvalue()


class TileServer:
    def __init__(self) -> None:
        png, served = _png(), []
        self.served: list[str] = served

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if TILE_PATH.fullmatch(self.path) is None:
                    self.send_error(404)
                    return
                served.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/{{z}}/{{x}}/{{y}}.png"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
