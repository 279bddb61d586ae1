"""What every page's shell needs: the nav for this person, the bell's unread count, and the
notification id the page's live connection resumes after."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, request
from flask_login import current_user

from marketplace.notifications import services
from marketplace.providers.services import provider_of

NAV = (
    ("needs.new", "Post a need", False),
    ("needs.mine", "My needs", False),
    ("contacts.index", "My providers", False),
    ("feed.index", "Feed", True),
    ("jobs.index", "My jobs", True),
)


def read_resume_point() -> None:
    """A page's live connection resumes after the newest notification id the page was
    rendered with, so that id is read before the page's content: whatever commits in between
    is then both on the page and replayed (the pages apply it idempotently), never neither."""
    blueprint = request.blueprint  # None for static files
    if (request.method == "GET" and blueprint and not blueprint.endswith(("_api", "api-docs"))
            and current_user.is_authenticated):
        g.resume_point = services.resume_point(current_user.id)


def shell() -> dict[str, Any]:
    views = current_app.view_functions
    if not current_user.is_authenticated:
        return {"nav_items": [], "unread_count": 0, "my_provider": None, "endpoints": views,
                "last_notification_id": 0, "last_notification_seq": 0}
    last_id, unread, last_seq = g.get("resume_point") or services.resume_point(current_user.id)
    provider = provider_of(current_user)
    items = [(endpoint, label) for endpoint, label, provider_only in NAV
             if endpoint in views and (provider or not provider_only)]
    if provider is None and "providers.setup" in views:
        items.append(("providers.setup", "Become a provider"))
    return {"nav_items": items, "unread_count": unread, "my_provider": provider,
            "endpoints": views, "last_notification_id": last_id, "last_notification_seq": last_seq}


#: Flashed messages that belong next to one field of a page after its redirect (a need photo
#: refused): base.html leaves them to that page instead of the banner at the top.
FIELD_MESSAGES = ("field:photo",)


def register(app: Flask) -> None:
    app.before_request(read_resume_point)
    app.context_processor(shell)
    app.jinja_env.globals["field_message_categories"] = FIELD_MESSAGES
