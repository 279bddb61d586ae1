"""Entry point: ``flask --app wsgi ...`` and WSGI servers (``wsgi:app``)."""

from marketplace import create_app

app = create_app()
