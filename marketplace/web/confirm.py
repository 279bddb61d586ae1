"""Asking before what cannot be undone (accepting an offer, withdrawing one, completing or
cancelling a need, revoking a token, blocking, signing out everywhere).

The page's form carries ``confirm=ask`` and ``data-confirm`` (macros.confirm_attrs): app.js
asks in a ``<dialog>`` and sends ``confirm=yes``. Without JavaScript the form arrives still
saying ``ask`` and the route answers with a confirmation page (``confirm.html``) holding the
same question and the same fields, whose button sends ``confirm=yes``. A form without the field
(an older page, a script) acts at once, as before: the question is the page's, for people."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

SKIPPED = {"csrf_token", "confirm"}


def wanted() -> bool:
    """The form asks to be confirmed and was not yet."""
    return request.form.get("confirm") == "ask"


def ask(kind: str, back: str, **params: Any) -> str:
    """The confirmation page: ``kind``'s question (templates/_questions.html) with ``params``,
    a form re-posting this request's fields with ``confirm=yes``, and a way back."""
    fields = [(k, v) for k, values in request.form.lists() if k not in SKIPPED for v in values]
    return render_template("confirm.html", kind=kind, params=params, fields=fields,
                           action=request.path, back=back)
