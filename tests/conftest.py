"""Fixtures: a migrated database per backend, per-test cleanup, and factories.

Every test that uses ``app`` runs once on SQLite and once on PostgreSQL. PostgreSQL tests skip
when no server answers, except under CI (``CI`` set), where a missing server is a failure.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, NamedTuple

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pages import csrf_token
from sqlalchemy import func, select, text

from marketplace import create_app, lifecycle, schemas
from marketplace.accounts import services as accounts
from marketplace.accounts.models import User
from marketplace.extensions import db, limiter
from marketplace.needs import services as needs
from marketplace.needs.models import Need
from marketplace.offers import services as offers
from marketplace.offers.models import Offer
from marketplace.providers import services as providers
from marketplace.providers.models import Provider
from marketplace.ratings.models import Rating

# Every status a test observes an API operation answer must be in the OpenAPI document, and
# every event payload it sees must fit its schema.
pytest_plugins = ["observed_statuses", "observed_events"]

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",")
IN_CI = bool(os.environ.get("CI"))
KEEP = ("categories", "alembic_version", "notification_counter")

AUSTIN = (30.2672, -97.7431)
PUBLIC_URL = "https://nearby.test"  # where links in mail point (config PUBLIC_URL)
ROOT = Path(__file__).resolve().parent.parent

# every answer dumped the fast way is checked against marshmallow's own dump (schemas.Schema)
schemas.CHECK_DUMPS = True


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but did not answer: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")


@contextmanager
def throwaway_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped (connections and all) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session", autouse=True)
def map_tiles() -> Iterator[Any]:
    """Every app and server process of the run draws its maps' tiles from a local tile server
    (bench/tiles.py), never OpenStreetMap: set in the environment before any app is built, so
    ``create_app`` and ``live.server`` processes read it."""
    from bench.tiles import TileServer

    server = TileServer()
    saved = os.environ.get("MAP_TILE_URL")
    os.environ["MAP_TILE_URL"] = server.url
    yield server
    if saved is None:
        os.environ.pop("MAP_TILE_URL", None)
    else:
        os.environ["MAP_TILE_URL"] = saved
    server.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards."""
    with throwaway_pg_database("mkt_test") as url:
        yield url


def make_test_app(url: str, **extra: Any) -> Flask:
    return create_app({
        "SQLALCHEMY_DATABASE_URI": url,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "PASSWORD_HASH_FAST": True,
        "PUBLIC_URL": PUBLIC_URL,
        "WTF_CSRF_ENABLED": False,
        # The limiter runs in every test, with limits no ordinary test reaches; tests of the
        # limits set their own (``rate_limits``). Counts are reset after each test.
        "RATELIMIT_STORAGE_URI": "memory://",
        # Webhook receivers are local servers (tests/receiver.py); retries are not waited for.
        "WEBHOOKS_ALLOW_HTTP": True, "WEBHOOKS_ALLOW_PRIVATE": True,
        "WEBHOOKS_RETRY_SCHEDULE": "0,0", "WEBHOOKS_DISABLE_AFTER": 2,
        # scores computed from the ratings each test writes: the platform mean read every
        # time (test_ratings.py tests the kept value itself)
        "RATING_MEAN_SECONDS": 0,
        **dict.fromkeys(RATE_LIMITS, "100000 per hour"),
        **extra,
    })


#: Every rate limit the app configures (config.py), by setting name.
RATE_LIMITS = ("RATE_LIMIT_PLACE_CHANGES", "RATE_LIMIT_LOCATION_READS",
               "RATE_LIMIT_REACH_PREVIEWS", "RATE_LIMIT_SIGNIN", "RATE_LIMIT_SIGNIN_PER_IP",
               "RATE_LIMIT_SIGNUP", "RATE_LIMIT_SIGNUP_PER_IP", "RATE_LIMIT_PASSWORD_RESET",
               "RATE_LIMIT_PASSWORD_RESET_PER_IP", "RATE_LIMIT_NEEDS", "RATE_LIMIT_OFFERS",
               "RATE_LIMIT_MESSAGES", "RATE_LIMIT_REPLAYS", "RATE_LIMIT_REPORTS",
               "RATE_LIMIT_WEBHOOKS")


@pytest.fixture
def rate_limits(app: Flask) -> Iterator[Any]:
    """Set limits for one test: ``rate_limits(RATE_LIMIT_PLACE_CHANGES="3 per hour")``."""
    saved = {name: app.config[name] for name in RATE_LIMITS}

    def set_limits(**limits: str) -> None:
        assert set(limits) <= set(RATE_LIMITS), limits
        app.config.update(limits)

    yield set_limits
    app.config.update(saved)


@dataclass
class Mail:
    """One mail the test SMTP server took."""

    to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "the mail has no text part"
        return part.get_content()

    def link(self, start: str = PUBLIC_URL) -> str:
        """The one link in the text that begins with ``start``, as a path for the test client."""
        found = sorted(set(re.findall(re.escape(start) + r"[^\s<>\"]*", self.text)))
        assert len(found) == 1, (found, self.text)
        return found[0].removeprefix(PUBLIC_URL)


class Mailbox:
    """What aiosmtpd (a real SMTP server on a free local port) received; the app sends to it
    through MAIL_URL like to any server. smtplib returns only once the server answered DATA,
    so a mail the app sent is here when the request returns."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or envelope.content,
                                     policy=email_policy.default)
        self.mails.append(Mail(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.to]

    def last(self, address: str) -> Mail:
        mails = self.to(address)
        assert mails, f"no mail to {address}; mail went to {[m.to for m in self.mails]}"
        return mails[-1]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, str]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, f"smtp://127.0.0.1:{port}"
    controller.stop()


@pytest.fixture
def mailbox(app: Flask, smtp_server: tuple[Mailbox, str]) -> Mailbox:
    """The test SMTP server's mail, emptied for this test."""
    box, _url = smtp_server
    box.mails.clear()
    return box


@pytest.fixture(scope="session", params=BACKENDS)
def backend_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                smtp_server: tuple[Mailbox, str]) -> Flask:
    """One app per backend, its schema built by the migrations (never ``create_all``)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_database")
    app = make_test_app(url, MAIL_URL=smtp_server[1])
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


def _clean(app: Flask) -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP]
    # DELETE, children first, on both databases: a test leaves a few rows, and PostgreSQL's
    # TRUNCATE of every table costs ~0.1 s a test however few there are (new files for each).
    # Sequences go on, as in production (SQLite's DELETE keeps sqlite_sequence too): no test
    # may depend on ids starting at 1, nor miss an id being reused.
    with db.engine.begin() as conn:
        for name in tables:
            conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def app(backend_app: Flask) -> Iterator[Flask]:
    with backend_app.app_context():
        yield backend_app
        db.session.remove()
        _clean(backend_app)
        limiter.reset()


@pytest.fixture
def backend(app: Flask) -> str:
    return db.engine.dialect.name


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class Person:
    """A user with a token and a client speaking for them."""

    user: User
    token: str
    client: FlaskClient
    password: str
    provider: Provider | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return getattr(self.client, method)(url, headers=headers, **kwargs)

    def get(self, url: str, **kw: Any) -> Any:
        return self._call("get", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self._call("post", url, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self._call("put", url, **kw)

    def patch(self, url: str, **kw: Any) -> Any:
        return self._call("patch", url, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self._call("delete", url, **kw)


_seq = itertools.count(1)


@pytest.fixture
def make_user(app: Flask, client: FlaskClient) -> Any:
    def make(name: str | None = None, email: str | None = None,
             password: str = "correct horse battery", phone: str | None = None,
             verified: bool = True) -> Person:
        n = next(_seq)
        user = accounts.register(email or f"user{n}@example.com", password, name or f"User {n}",
                                 phone, verified=verified)
        _token, raw = accounts.create_token(user, "tests")
        return Person(user=user, token=raw, client=client, password=password)

    return make


@pytest.fixture
def make_provider(make_user: Any) -> Any:
    def make(person: Person | None = None, *, categories: tuple[str, ...] = ("catering",),
             base: tuple[float, float] = AUSTIN, radius_km: float = 25, active: bool = True,
             handle: str | None = None) -> Person:
        person = person or make_user()
        person.provider = providers.save_profile(person.user, {
            "handle": handle or f"pro-{person.user.id}",
            "display_name": f"Pro {person.user.name}",
            "bio": "",
            "categories": list(categories),
            "base": {"lat": base[0], "lon": base[1]},
            "radius_km": radius_km,
            "active": active,
        })
        return person

    return make


class AuthActions:
    """Signing in to and out of the web pages with the test client, as flaskr's ``AuthActions``:
    each sign-in is a client (a cookie jar) of its own, so several people can be signed in at
    once. Through the sign-in form, with its CSRF token when the app checks one."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def client(self) -> FlaskClient:
        """A browser of its own, signed in as nobody."""
        return self.app.test_client()

    def sign_in(self, person: Person | None = None, *, email: str | None = None,
                password: str | None = None, client: FlaskClient | None = None) -> FlaskClient:
        """``client`` (default: a new one) signed in as ``person`` (or ``email``/``password``)."""
        if person is not None:
            email, password = email or person.user.email, password or person.password
        client = client or self.client()
        self._post(client, "/signin", {"email": email or "", "password": password or ""})
        return client

    def sign_out(self, client: FlaskClient) -> None:
        self._post(client, "/signout", {})

    def _post(self, client: FlaskClient, path: str, form: dict[str, str]) -> None:
        if self.app.config["WTF_CSRF_ENABLED"]:
            form["csrf_token"] = csrf_token(client.get("/signin"))
        r = client.post(path, data=form)
        assert (r.status_code, r.headers.get("Location")) == (302, "/"), r.get_data(as_text=True)


@pytest.fixture
def auth(app: Flask) -> AuthActions:
    return AuthActions(app)


def message_data(body: str, need_id: int = 1, **overrides: Any) -> dict[str, Any]:
    """A well-formed ``message.received`` payload, for tests that drive delivery with
    notifications of their own (every payload must fit its schema: observed_events.py)."""
    return {"offer_id": 1, "need_id": need_id, "message_id": 1, "from": "customer",
            "sender_name": "Someone", "body": body, "created_at": "2026-12-01T12:00:00+00:00",
            **overrides}


def need_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "Catering for 20 people",
        "description": "Vegetarian buffet on Saturday",
        "category": "catering",
        "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 20,
        "budget": {"amount": 40000, "currency": "USD"},
        "address": "100 Congress Ave, Austin",
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_need(make_user: Any) -> Any:
    def make(customer: Person | None = None, **overrides: Any) -> Need:
        customer = customer or make_user()
        data = need_data(**overrides)
        data.setdefault("expires_at", datetime.now(UTC) + timedelta(hours=48))
        return needs.create(customer.user, data)

    return make


@pytest.fixture
def make_offer(make_provider: Any) -> Any:
    def make(need: Need, provider: Person | None = None, amount: int | None = None,
             **overrides: Any) -> Offer:
        provider = provider or make_provider()
        data: dict[str, Any] = {"message": "Happy to help", **overrides}
        if amount is not None:
            data["price"] = {"amount": amount, "currency": need.budget_currency}
        return offers.make(provider.user, need.id, data)

    return make


class Job(NamedTuple):
    need: Need
    offer: Offer
    rating: Rating | None


@pytest.fixture
def make_job(make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> Any:
    """``make_job(customer, pro)``: a need of ``customer`` with ``pro``'s offer accepted, the job
    completed unless ``done=False``, and rated ``stars`` (with sub-``scores``) if given."""

    def make(customer: Person | None = None, pro: Person | None = None, *, done: bool = True,
             stars: int | None = None, **scores: int) -> Job:
        customer = customer or make_user()
        need = make_need(customer)
        offer = make_offer(need, pro or make_provider())
        lifecycle.accept(customer.user, offer.id)
        if done:
            lifecycle.complete(customer.user, need.id)
        rating = None if stars is None else lifecycle.rate(
            customer.user, need.id, {"stars": stars, "comment": "Tasty food",
                                     "scores": scores or None})
        return Job(need, offer, rating)

    return make


def committed_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as committed (read through a separate connection)."""
    state = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            cols = [c for c in table.c if c.name != "last_used_at"]
            state[table.name] = sorted((tuple(r) for r in conn.execute(select(*cols))), key=repr)
    return state


Snapshot = dict[str, list[dict[str, Any]]]


def snapshot() -> Snapshot:
    """Every committed row of the tables a test's cleanup empties (``restore`` puts them
    back): for a large parametrized table of tests that each need the same world, built once
    per backend instead of once per case."""
    with db.engine.connect() as conn:
        return {t.name: [dict(r) for r in conn.execute(t.select()).mappings()]
                for t in db.metadata.sorted_tables if t.name not in KEEP}


def restore(snap: Snapshot) -> None:
    """Insert a ``snapshot``'s rows into the emptied tables (parents first), with their ids:
    the sequences are already past them, so the rows a test creates get new ids as ever.
    Foreign keys are checked at the commit (SQLite) or not at all (PostgreSQL, as a replica
    does): the rows were consistent when taken, and two tables point at each other (a need's
    accepted offer)."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("PRAGMA defer_foreign_keys = ON"))
        for table in db.metadata.sorted_tables:
            if snap.get(table.name):
                conn.execute(table.insert(), snap[table.name])


def rebind(person: Person) -> None:
    """A ``Person`` from an earlier test, its user and provider read again in this session."""
    from sqlalchemy import inspect

    person.user = db.session.get(User, inspect(person.user).identity)
    if person.provider is not None:
        person.provider = db.session.get(Provider, inspect(person.provider).identity)


def committed_rows(model: Any, **equal: Any) -> list[Any]:
    """The committed rows of ``model``'s table (read through a separate connection), in id
    order, optionally only those whose columns equal ``equal`` (None: no condition)."""
    table = model.__table__
    stmt = select(table).order_by(*table.primary_key.columns)
    for name, value in equal.items():
        if value is not None:
            stmt = stmt.where(table.c[name] == value)
    with db.engine.connect() as conn:
        return list(conn.execute(stmt).mappings())


def committed_count(model: Any) -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model.__table__)) or 0


def error_of(response: Any) -> dict[str, Any]:
    """The error object of an API response, checked to have the one error shape."""
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert error["status"] == response.status_code
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert error["message"]
    return error


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The local Redis (skipped without one, a failure under CI)."""
    import redis

    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI but did not answer: {exc}")
        pytest.skip(f"Redis not available: {exc}")
    return url


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium through playwright (skipped without it, a failure under CI)."""
    from browser import CHROMIUM, LAUNCH_ARGS

    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"Chromium is required in CI but is not at {CHROMIUM}")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def migrated(url: str) -> Flask:
    """The database at ``url`` with its schema built by the migrations, and an app on it (its
    connections closed, so a server process can take the database over)."""
    app = make_test_app(url)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    return app


def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[str, Flask]:
    """A new, migrated SQLite file and an app on it (``migrated``)."""
    url = f"sqlite:///{tmp_path_factory.mktemp(name) / f'{name}.sqlite3'}"
    return url, migrated(url)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server process (``python -m marketplace.serve``) on a migrated SQLite file, one
    per test module."""
    from live import server

    url, _app = migrated_sqlite(tmp_path_factory, "e2e")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600") as base:
        yield base


@pytest.fixture
def emitted_wire(app: Flask) -> Iterator[list[str]]:
    """The JSON text of every notification emitted live during the test (what Socket.IO
    clients receive)."""
    from marketplace.notifications import outbox

    wires: list[str] = []

    def record(events: list[tuple[int, dict[str, Any]]]) -> None:
        wires.extend(getattr(event, "wire", "") for _uid, event in events)

    outbox.on_emit(record)
    yield wires
    outbox._emitters.remove(record)


def _starts_servers(module: Any) -> bool:
    """Whether a test module imports the real-server helpers of tests/live.py."""
    import live

    return any(v is live or getattr(v, "__module__", None) == "live" for v in vars(module).values())


HYPOTHESIS_RUNNERS = frozenset({"given", "run_state_machine_as_test"})


def _runs_hypothesis(test: Any) -> bool:
    """Whether a test is a property test: ``@given``, or ``given``/a state machine in its body."""
    return getattr(test, "is_hypothesis_test", False) or bool(
        HYPOTHESIS_RUNNERS & set(test.__code__.co_names))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by what they use, so a new one is marked without anyone remembering: a real
    browser (the ``chromium`` fixture) is ``browser``; a module that imports ``live`` starts
    real server processes, so its tests are ``live``; a property test is ``hypothesis``. These
    and ``clock`` (marked by hand) are ``slow``, which ``make test-fast`` leaves out (``make
    test`` runs everything)."""
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        module = getattr(item, "module", None)
        if module is not None and _starts_servers(module):
            item.add_marker(pytest.mark.live)
        if isinstance(item, pytest.Function) and _runs_hypothesis(item.obj):
            item.add_marker(pytest.mark.hypothesis)
        if any(item.get_closest_marker(m) for m in ("browser", "live", "hypothesis", "clock")):
            item.add_marker(pytest.mark.slow)
