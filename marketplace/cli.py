"""CLI commands: ``flask --app wsgi <command>``."""

from __future__ import annotations

import click
from flask import Flask


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(expire_needs)
    app.cli.add_command(send_alerts)
    app.cli.add_command(prune_trends)
    app.cli.add_command(create_user)
    app.cli.add_command(grant_admin)
    app.cli.add_command(revoke_admin)
    app.cli.add_command(webhooks_deliver)


@click.command("seed-demo")
def seed_demo() -> None:
    """Fill the database with a living demo city (does nothing if it is already there)."""
    from marketplace import demo

    outcome = demo.seed()
    click.echo({"seeded": "Demo city seeded.", "refreshed": "Demo city refreshed with new open "
                "needs.", "present": "Demo city already present."}[outcome])
    click.echo(f"Demo logins (password for all: {demo.PASSWORD}):")
    for email, role in demo.LOGINS:
        click.echo(f"  {email:32} {role}")


@click.command("expire-needs")
def expire_needs() -> None:
    """Expire open needs past their expiry time, and forget old idempotency keys."""
    from marketplace.api.idempotency import purge_expired
    from marketplace.lifecycle import expire_due

    expired = expire_due()
    purged = purge_expired()
    click.echo(f"Expired {len(expired)} needs; forgot {purged} idempotency keys.")


@click.command("send-alerts")
def send_alerts() -> None:
    """One pass of the e-mail alert sender (what the server's loop does every few minutes):
    mail each opted-in provider who is not online the needs matched since their last alert."""
    from marketplace.alerts.services import send_due

    click.echo(f"Sent {send_due()} alert mails.")


@click.command("prune-trends")
def prune_trends() -> None:
    """Forget trend counters older than two of the longest window (14 days)."""
    from marketplace.signals.services import prune

    click.echo(f"Forgot {prune()} trend counters.")


@click.command("webhooks-deliver")
@click.option("--loop", is_flag=True, help="Keep delivering every WEBHOOKS_INTERVAL_SECONDS.")
def webhooks_deliver(loop: bool) -> None:
    """Deliver the webhook deliveries that are due (one pass, or --loop)."""
    import time

    from flask import current_app

    from marketplace.webhooks.services import deliver_due

    while True:
        done = deliver_due()
        click.echo(f"Attempted {done} webhook deliveries.")
        if not loop:
            return
        if not done:
            time.sleep(current_app.config["WEBHOOKS_INTERVAL_SECONDS"])


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.password_option()
def create_user(email: str, name: str, password: str) -> None:
    """Create an account from the command line."""
    from marshmallow import ValidationError

    from marketplace.accounts import services
    from marketplace.accounts.schemas import RegisterSchema
    from marketplace.errors import DomainError

    try:
        data = RegisterSchema().load({"email": email, "name": name, "password": password})
        user = services.register(data["email"], data["password"], data["name"])
    except ValidationError as exc:
        raise click.ClickException(str(exc.messages)) from None
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created user {user.id} <{user.email}>.")



def _set_admin(email: str, value: bool) -> None:
    from marketplace.errors import DomainError
    from marketplace.moderation import services

    try:
        user = services.set_admin(email, value)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{user.email} is {'now' if value else 'no longer'} an admin.")


@click.command("grant-admin")
@click.argument("email")
def grant_admin(email: str) -> None:
    """Make an account an admin (the report queue at /admin/reports)."""
    _set_admin(email, True)


@click.command("revoke-admin")
@click.argument("email")
def revoke_admin(email: str) -> None:
    """Take the admin role away from an account."""
    _set_admin(email, False)
