"""JSON routes: the durable notification feed (the same events the socket delivers)."""

from typing import Any

from flask import g

from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.notifications import services
from marketplace.notifications.schemas import (
    MarkReadSchema,
    NotificationArgs,
    NotificationListSchema,
    UnreadSchema,
)
from marketplace.pagination import next_params

blp = Blueprint("notifications_api", __name__, url_prefix="/api/v1", description="Notifications")


@blp.route("/notifications", methods=["GET"])
@auth_required
@blp.arguments(NotificationArgs, location="query")
@blp.response(200, NotificationListSchema)
def list_after(args: dict[str, Any]) -> Any:
    """Your notifications after an id and/or a seq, oldest first — to catch up on what you
    missed. Given both, a notification must come after both. When more follow, the `Link`
    header names the next page."""
    after_id, after_seq = args.get("after", 0), args.get("after_seq", 0)
    items = services.after(g.user.id, after_id, args["limit"] + 1, after_seq=after_seq)
    more, items = len(items) > args["limit"], items[:args["limit"]]
    if items:
        body = {"last_id": items[-1].id, "last_seq": items[-1].seq}
        if more:  # the Link header: the same position, in the counts the caller pages by
            by_id = "after" in args and "after_seq" not in args
            next_params(**({"after": body["last_id"]} if by_id else
                           {"after_seq": body["last_seq"], **(
                               {"after": body["last_id"]} if "after" in args else {})}))
    else:  # nothing after: where the caller stands, in both counts
        body = dict(zip(("last_id", "last_seq"),
                        services.position(g.user.id, after_id, after_seq), strict=True))
    return {"items": items, **body, "unread_count": services.unread_count(g.user)}


@blp.route("/notifications/read", methods=["POST"])
@auth_required
@blp.arguments(MarkReadSchema)
@blp.response(200, UnreadSchema)
def mark_read(data: dict[str, Any]) -> Any:
    """Mark notifications read, by ids or up to an id."""
    marked = services.mark_read(g.user, data.get("ids"), data.get("up_to"))
    return {"marked": marked, "unread_count": services.unread_count(g.user)}
