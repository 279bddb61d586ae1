"""Run the server: ``python -m marketplace.serve`` (one process, gevent, WebSocket).

gevent is chosen on purpose (see docs/performance.md): cooperative greenlets hold thousands of
idle WebSocket connections cheaply, and psycopg 3 and redis-py cooperate with it once the
standard library is monkey-patched — which must happen before anything else is imported.
"""

from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402
import os  # noqa: E402

os.environ.setdefault("SOCKETIO_ASYNC_MODE", "gevent")


def main() -> None:
    from gevent.pywsgi import WSGIServer

    from marketplace import create_app
    from marketplace.extensions import socketio
    from marketplace.realtime import (
        start_alerts_task,
        start_expiry_task,
        start_heartbeat_task,
        start_message_queue,
        start_webhook_task,
    )
    from marketplace.wsgi_server import Handler

    app = create_app()
    start_expiry_task(app)
    start_heartbeat_task(app)
    start_alerts_task(app)
    start_webhook_task(app)
    start_message_queue()
    # Thousands of long-lived connections make full garbage collections long (a stop-the-world
    # pause for every client): keep start-up objects out of them and collect less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    print(f" * Serving on http://{host}:{port} (gevent, Socket.IO)", flush=True)
    # What socketio.run does under gevent, with the handler that renders the server's refusals.
    log = "default" if os.environ.get("ACCESS_LOG") == "1" else None
    socketio.wsgi_server = WSGIServer((host, port), app, handler_class=Handler, log=log)
    socketio.wsgi_server.serve_forever()


if __name__ == "__main__":
    main()
