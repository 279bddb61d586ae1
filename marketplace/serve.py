"""Run the server: ``python -m marketplace.serve`` (one process, gevent, WebSocket).

gevent is chosen on purpose (see docs/performance.md): cooperative greenlets hold thousands of
idle WebSocket connections cheaply, and psycopg 3 and redis-py cooperate with it once the
standard library is monkey-patched — which must happen before anything else is imported.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

os.environ.setdefault("SOCKETIO_ASYNC_MODE", "gevent")


def main() -> None:
    from marketplace import create_app
    from marketplace.extensions import socketio
    from marketplace.realtime import start_expiry_task

    app = create_app()
    start_expiry_task(app)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    print(f" * Serving on http://{host}:{port} (gevent, Socket.IO)", flush=True)
    socketio.run(app, host=host, port=port, log_output=os.environ.get("ACCESS_LOG") == "1")


if __name__ == "__main__":
    main()
