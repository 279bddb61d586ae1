"""The message form of an offer's thread on the need page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask_login import current_user, login_required

from marketplace.extensions import limited
from marketplace.messages import services as messages
from marketplace.messages.schemas import MessageInSchema
from marketplace.web import forms
from marketplace.web.needs import act
from marketplace.web.offers import own_offer

bp = Blueprint("messages", __name__)


@bp.route("/offers/<int:offer_id>/messages", methods=["POST"])
@login_required
@limited("RATE_LIMIT_MESSAGES")
def send(offer_id: int) -> Any:
    offer = own_offer(offer_id)
    aliases = {"body": f"body-{offer_id}"}

    def run() -> None:
        data = forms.load(MessageInSchema(), {"body": request.form.get("body", "")},
                          aliases=aliases)
        messages.send(current_user, offer_id, data["body"])

    return act(offer.need_id, f"message-{offer_id}", run, "Message sent.",
               f"#thread-{offer_id}", aliases)
