"""My providers: the customer's private record of every provider who made them an offer —
a note, "would hire again", favourite — and blocking or unblocking them. Each provider has
one form, loaded with the API's schema (``PUT /api/v1/me/providers/{handle}``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace import lifecycle
from marketplace.blocks import services as blocks
from marketplace.contacts import services
from marketplace.contacts.schemas import MyProviderInSchema
from marketplace.errors import DomainError
from marketplace.web import confirm, forms
from marketplace.web.forms import FormErrors, FormInvalid, flatten

bp = Blueprint("contacts", __name__)

SHOWN = 200
HIRE_AGAIN = {"yes": "true", "no": "false", "": None}


def _page(errors: FormErrors | None = None, errors_for: str | None = None) -> Any:
    items, more = services.list_mine(current_user, request.args.get("cursor"), SHOWN)
    return render_template("contacts/index.html", items=items, next_cursor=more,
                           errors=errors or {}, errors_for=errors_for, form=request.form)


@bp.route("/me/providers")
@login_required
def index() -> Any:
    return _page()


@bp.route("/me/providers/<handle>", methods=["POST"])
@login_required
def save(handle: str) -> Any:
    form = request.form
    answer = form.get("would_hire_again", "")
    try:
        data = forms.load(MyProviderInSchema(), {
            "note": form.get("note", ""),
            "would_hire_again": HIRE_AGAIN.get(answer, answer),
            "favourite": "true" if form.get("favourite") else "false",
        })
        record = services.update(current_user, handle, data)
    except FormInvalid as exc:
        return _page(exc.errors, handle)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _page(flatten(exc.fields or {"_form": [exc.message]}), handle)
    flash(f"Saved your note on {record.display_name}.")
    return redirect(url_for("contacts.index") + f"#provider-{record.handle}")


@bp.route("/me/providers/<handle>/block", methods=["POST"])
@login_required
def block(handle: str) -> Any:
    record = services.get(current_user, handle)  # 404 unless they dealt with you
    if confirm.wanted():
        return confirm.ask("block", url_for("contacts.index") + f"#provider-{record.handle}",
                           name=record.display_name)
    lifecycle.block(current_user, handle)
    flash(f"Blocked {record.display_name}: their open offers are declined and they no longer "
          "see your needs.")
    return redirect(url_for("contacts.index") + f"#provider-{record.handle}")


@bp.route("/me/providers/<handle>/unblock", methods=["POST"])
@login_required
def unblock(handle: str) -> Any:
    record = services.get(current_user, handle)
    blocks.unblock(current_user, handle)
    flash(f"Unblocked {record.display_name}.")
    return redirect(url_for("contacts.index") + f"#provider-{record.handle}")
