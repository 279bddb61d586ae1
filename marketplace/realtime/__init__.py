"""Socket.IO: live delivery of what the outbox committed (``emit``), the connection handlers
(``events``: authentication, catching up), and the server's periodic expiry task."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask

from marketplace.config import redis_timeouts
from marketplace.extensions import socketio
from marketplace.notifications import outbox
from marketplace.realtime import emit, events, queue

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600  # the expiry loop forgets old trend counters this often
SUBSCRIBE_WAIT_SECONDS = 5.0  # how long a starting process waits for its Redis subscription


def init_app(app: Flask) -> None:
    url, channel = app.config["REDIS_URL"], app.config["SOCKETIO_CHANNEL"]
    options: dict[str, Any] = {"message_queue": url, "channel": channel}
    if url and url.startswith(("redis://", "rediss://")):
        # a Redis queue that notices what it loses and tells the clients to resync
        options = {"client_manager": queue.ResyncingRedisManager(
            url, channel=channel, redis_options=redis_timeouts(app.config))}
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        cors_allowed_origins=app.config["CORS_ORIGINS"] or None,
        logger=False,
        engineio_logger=False,
        serializer=emit.Packet,
        **options,
    )
    app.wsgi_app = emit.track_upgrades(app.wsgi_app)  # type: ignore[method-assign]
    outbox.init_app()
    outbox.on_emit(emit.emit_events)
    outbox.on_signal(emit.emit_signals)
    events.register(socketio)


def expiry_round(app: Flask, pruned_at: float) -> float:
    """One round of the expiry loop: expire what is due and, when ``PRUNE_EVERY_SECONDS`` have
    passed since ``pruned_at`` (``time.monotonic``), forget old trend counters; returns when
    trends were last pruned."""
    from marketplace.lifecycle import expire_due
    from marketplace.signals.services import prune

    with app.app_context():
        expire_due()
        if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
            prune()
            return time.monotonic()
    return pruned_at


def start_expiry_task(app: Flask) -> None:
    """Expire overdue needs every EXPIRY_INTERVAL_SECONDS inside the server process, and
    forget old trend counters once an hour. Several processes may run it at once: each
    expiry is a conditional UPDATE, and pruning deletes what is already past."""

    def loop() -> None:
        pruned_at = float("-inf")
        while True:
            socketio.sleep(app.config["EXPIRY_INTERVAL_SECONDS"])
            try:
                pruned_at = expiry_round(app, pruned_at)
            except Exception:  # keep the loop alive; the next round retries
                log.exception("expiring needs or pruning trends failed")

    socketio.start_background_task(loop)


def start_alerts_task(app: Flask) -> None:
    """Send due e-mail alerts every ALERTS_POLL_SECONDS inside the server process. Several
    processes may run it at once: each provider's batch is taken with a lease."""

    def loop() -> None:
        from marketplace.alerts.services import send_due

        while True:
            socketio.sleep(app.config["ALERTS_POLL_SECONDS"])
            try:
                with app.app_context():
                    send_due()
            except Exception:  # keep the loop alive; the next round retries
                log.exception("sending alerts failed")

    socketio.start_background_task(loop)


def start_webhook_task(app: Flask) -> None:
    """Deliver due webhook deliveries inside the server process, every
    WEBHOOKS_INTERVAL_SECONDS (at once again while there is more). Several processes may run
    it: each delivery is claimed under a lease."""

    def loop() -> None:
        from marketplace.webhooks.services import deliver_due

        while True:
            done = 0
            try:
                with app.app_context():
                    done = deliver_due()
            except Exception:  # keep the loop alive; the next round retries
                log.exception("delivering webhooks failed")
            if not done:
                socketio.sleep(app.config["WEBHOOKS_INTERVAL_SECONDS"])

    socketio.start_background_task(loop)


def start_message_queue() -> None:
    """Subscribe to the message queue (Redis) now, as the process starts. python-socketio
    starts its listener at the first connection, so the events other processes published
    while that subscription was coming up never reached it: a load test's first two
    notifications were lost live that way (its clients do not resync). Now the process
    waits, up to ``SUBSCRIBE_WAIT_SECONDS``, until the subscription is live (it heard its own
    marker back) before it serves; past that -- Redis away at start-up -- it serves anyway
    and its connections are told to resync once the subscription is up. Without a queue this
    does nothing."""
    server = socketio.server
    if not server.manager_initialized:
        server.manager_initialized = True
        server.manager.initialize()
    manager = server.manager
    if isinstance(manager, queue.ResyncingRedisManager) and not manager.wait_live(
            SUBSCRIBE_WAIT_SECONDS):
        log.warning("live delivery: the Redis subscription is not up after %s s; serving "
                    "anyway (connections will be told to resync)", SUBSCRIBE_WAIT_SECONDS)


def start_heartbeat_task(app: Flask) -> None:
    """Vouch for this process's live connections every LIVE_HEARTBEAT_SECONDS, so rows of a
    process that died stop counting against their users' connection cap."""
    from marketplace.accounts import sessions

    def loop() -> None:
        while True:
            socketio.sleep(app.config["LIVE_HEARTBEAT_SECONDS"])
            try:
                with app.app_context():
                    sessions.heartbeat(set(events.LOCAL))
            except Exception:  # keep the loop alive; the next round retries
                log.exception("the live-connection heartbeat failed")

    socketio.start_background_task(loop)
