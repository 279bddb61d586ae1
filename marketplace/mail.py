"""Sending mail: the one place that does (Flask-Mailman; SMTP from ``MAIL_URL``, config.py).

Every mail is a template pair under templates/mail/: ``<name>.txt`` (required; its first line
is ``Subject: ...``) and ``<name>.html`` (optional, sent as the alternative part). Links in a
mail are built from ``PUBLIC_URL``, never from the request's Host header.

Without ``MAIL_URL`` the console backend writes each mail to the server's output, so the demo
works without a mail server: the links are printed where the server runs.

Sending never raises: a mail server that is down or refuses is logged, and the caller answers
the person exactly as when it worked (what a response says must not depend on whether a mail
went out -- that would tell who has an account).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app
from flask_mailman import EmailMultiAlternatives, Mail
from jinja2 import TemplateNotFound

log = logging.getLogger(__name__)
mailman = Mail()


def init_app(app: Flask) -> None:
    mailman.init_app(app)


def link(path: str) -> str:
    """An absolute link to ``path`` (``/verify/...``) on the public site."""
    return current_app.config["PUBLIC_URL"] + path


def _render(path: str, context: dict[str, Any]) -> str:
    # Straight from the environment: a mail is not a page, and needs no request (the pages'
    # context processors read the signed-in user).
    return current_app.jinja_env.get_template(path).render(**context)


def render(name: str, **context: Any) -> tuple[str, str, str | None]:
    """(subject, text, html or None) of the mail ``name``."""
    text = _render(f"mail/{name}.txt", context)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"templates/mail/{name}.txt must start with a 'Subject: ' line")
    try:
        html: str | None = _render(f"mail/{name}.html", context)
    except TemplateNotFound:
        html = None
    return first.removeprefix("Subject: ").strip(), body.lstrip("\n"), html


def send(to: str, name: str, *, headers: dict[str, str] | None = None, **context: Any) -> bool:
    """Send the mail ``name`` to ``to`` (with extra ``headers``: List-Unsubscribe, a
    Message-ID of one's own); whether the mail server took it."""
    subject, text, html = render(name, **context)
    message = EmailMultiAlternatives(subject, text, to=[to], headers=headers)
    if html is not None:
        message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:  # smtplib/socket errors of every kind: logged, never shown
        log.exception("could not send the %r mail", name)
        return False
    return True
