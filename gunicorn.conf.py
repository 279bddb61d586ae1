"""Production server settings: ``gunicorn -c gunicorn.conf.py wsgi:app``.

One worker process per core, each a gevent WebSocket worker holding many connections. With
several workers (or several machines) set REDIS_URL so Socket.IO events reach every process,
and route each client to one process (sticky sessions) or use the WebSocket transport only.
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# gevent-websocket's worker with the handler that answers the requests the server refuses itself
# (URL over 8 KB, malformed) in the app's error shape. It parses HTTP with gevent's pywsgi, so
# gunicorn's limit_request_* settings do not apply.
worker_class = "marketplace.wsgi_server.Worker"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# gunicorn caps each gevent worker at 1,000 connections by default; raise it (and the process'
# open-file limit, `ulimit -n`) to hold more idle sockets.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "10000"))
timeout = 60
raw_env = ["SOCKETIO_ASYNC_MODE=gevent"]


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    import gc

    from marketplace.realtime import (
        start_alerts_task,
        start_expiry_task,
        start_heartbeat_task,
        start_message_queue,
        start_webhook_task,
    )

    start_expiry_task(worker.wsgi)
    start_heartbeat_task(worker.wsgi)
    start_alerts_task(worker.wsgi)
    start_webhook_task(worker.wsgi)
    start_message_queue()
    # The towns pages name cells by: loaded now, not on the worker's first page (where the
    # whole event loop would wait for it), and frozen with the rest below.
    from marketplace.geocoding.gazetteer import shared_gazetteer

    shared_gazetteer().load_squares()
    gc.freeze()  # as in marketplace/serve.py: shorter collections with many connections
    gc.set_threshold(50_000, 20, 100)
