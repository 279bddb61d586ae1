"""JSON routes: the caller's webhooks (docs/api.md, "Webhooks")."""

from typing import Any

from flask import g

from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.pagination import OffsetPageArgs, PageArgs, offset_page, page, page_of
from marketplace.schemas import EmptySchema
from marketplace.webhooks import services
from marketplace.webhooks.schemas import (
    AttemptOutSchema,
    DeliveryOutSchema,
    WebhookCreatedSchema,
    WebhookInSchema,
    WebhookOutSchema,
    WebhookPatchSchema,
)

blp = Blueprint("webhooks_api", __name__, url_prefix="/api/v1",
                description="Webhooks: your notifications POSTed, signed, to your server")


@blp.route("/webhooks", methods=["POST"])
@auth_required
@blp.limited("RATE_LIMIT_WEBHOOKS")
@blp.idempotent
@blp.arguments(WebhookInSchema)
@blp.response(201, WebhookCreatedSchema)
def create(data: dict[str, Any]) -> Any:
    """Register an endpoint for the notification types you want. The answer carries the
    signing secret, this once."""
    webhook, secret = services.create(g.user, data)
    return _with_secret(webhook, secret)


def _with_secret(webhook: Any, secret: str) -> dict[str, Any]:
    return {"id": webhook.id, "url": webhook.url, "types": webhook.types,
            "enabled": webhook.enabled, "created_at": webhook.created_at,
            "previous_until": webhook.previous_until, "secret": secret}


@blp.route("/webhooks", methods=["GET"])
@auth_required
@blp.arguments(OffsetPageArgs, location="query")
@blp.response(200, page_of(WebhookOutSchema))
def list_mine(args: dict[str, Any]) -> Any:
    """Your webhooks, newest first."""
    return page(*offset_page(services.mine(g.user), args["cursor"], args["limit"]))


@blp.route("/webhooks/<int:webhook_id>", methods=["GET"])
@auth_required
@blp.response(200, WebhookOutSchema)
def show(webhook_id: int) -> Any:
    """One of your webhooks."""
    return services.get(g.user, webhook_id)


@blp.route("/webhooks/<int:webhook_id>", methods=["PATCH"])
@auth_required
@blp.arguments(WebhookPatchSchema, required=False)
@blp.response(200, WebhookOutSchema)
def change(data: dict[str, Any], webhook_id: int) -> Any:
    """Change a webhook's `url` (checked as when registering), `types` or `enabled`; what you
    leave out stays. Enabling a disabled webhook resumes what it is still owed."""
    return services.change(g.user, webhook_id, data)


@blp.route("/webhooks/<int:webhook_id>/rotate-secret", methods=["POST"])
@auth_required
@blp.limited("RATE_LIMIT_WEBHOOKS")
@blp.arguments(EmptySchema, required=False)
@blp.response(200, WebhookCreatedSchema)
def rotate_secret(_body: dict[str, Any], webhook_id: int) -> Any:
    """A new signing secret, shown this once. Until `previous_until`
    (`WEBHOOKS_SECRET_OVERLAP_SECONDS` from now, default 24 h) each delivery is signed with
    both the new and the previous secret, so your receiver may switch at any time."""
    webhook, secret = services.rotate_secret(g.user, webhook_id)
    return _with_secret(webhook, secret)


@blp.route("/webhooks/<int:webhook_id>", methods=["DELETE"])
@auth_required
@blp.response(204)
def remove(webhook_id: int) -> None:
    """Remove a webhook; what it was still owed is not delivered."""
    services.delete(g.user, webhook_id)


@blp.route("/webhooks/<int:webhook_id>/deliveries", methods=["GET"])
@auth_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(DeliveryOutSchema))
def list_deliveries(args: dict[str, Any], webhook_id: int) -> Any:
    """A webhook's deliveries, newest first: status, attempts, the last answer's status and
    the start of its body."""
    return page(*services.deliveries(g.user, webhook_id, args["cursor"], args["limit"]))


@blp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/attempts",
           methods=["GET"])
@auth_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(AttemptOutSchema))
def list_attempts(args: dict[str, Any], webhook_id: int, delivery_id: int) -> Any:
    """A delivery's attempts, newest first: when, how long, and the answer's status and the
    start of its body (or why there was none)."""
    return page(*services.attempts(g.user, webhook_id, delivery_id, args["cursor"],
                                   args["limit"]))


@blp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/replay", methods=["POST"])
@auth_required
@blp.arguments(EmptySchema, required=False)
@blp.response(202, DeliveryOutSchema)
def replay(_body: dict[str, Any], webhook_id: int, delivery_id: int) -> Any:
    """Send a delivery again, as soon as the worker runs (with the same `webhook-id`)."""
    return services.replay(g.user, webhook_id, delivery_id)
