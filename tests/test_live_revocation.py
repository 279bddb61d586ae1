"""Live connections follow the account: a revoked token or an ended session loses its socket
at once — on the process that ended it and, through Redis, on another — and no user holds more
than the allowed number of sockets. Real server processes, real Socket.IO clients."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from conftest import migrated, migrated_sqlite, throwaway_pg_database
from live import Api, Listener, server

CAP = 3


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, _app = migrated_sqlite(tmp_path_factory, "revocation")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600", LIVE_CONNECTIONS_PER_USER=str(CAP)) as base:
        yield base


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


class Watched(Listener):
    """A listener that records the moment the server disconnects it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.gone = threading.Event()
        super().__init__(*args, **kwargs)
        self.client.on("disconnect", lambda *a: self.gone.set())


def test_revoking_a_token_cuts_its_socket_and_leaves_the_others(live_url: str) -> None:
    person = Api(live_url, unique("tok"))
    r = person.call("POST", "/tokens", json={"email": person.user["email"],
                                             "password": person.password, "name": "second"})
    assert r.status_code == 201, r.text
    second_id, second = r.json()["id"], r.json()["token"]
    doomed = Watched(live_url, auth={"token": second})
    kept = Watched(live_url, auth={"token": person.token})
    try:
        assert person.call("DELETE", f"/tokens/{second_id}").status_code == 204
        assert doomed.gone.wait(10), "the socket of a revoked token was not cut"
        assert not kept.gone.is_set() and kept.client.connected
        with pytest.raises(socketio.exceptions.ConnectionError):
            Listener(live_url, auth={"token": second})
    finally:
        doomed.close()
        kept.close()


def test_signing_out_cuts_the_socket_of_that_session(live_url: str) -> None:
    person = Api(live_url, unique("web"))
    browser = person.sign_in_to_pages()
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    by_cookie = Watched(live_url, headers={"Cookie": cookie})
    by_token = Watched(live_url, auth={"token": person.token})
    try:
        from pages import csrf_token

        form = {"csrf_token": csrf_token(browser.get(live_url + "/account/sessions", timeout=10))}
        r = browser.post(live_url + "/signout", data=form, timeout=10, allow_redirects=False)
        assert r.status_code == 302
        assert by_cookie.gone.wait(10), "the socket of an ended session was not cut"
        assert by_token.client.connected
        with pytest.raises(socketio.exceptions.ConnectionError):
            Listener(live_url, headers={"Cookie": cookie})  # the replayed cookie is refused
    finally:
        by_cookie.close()
        by_token.close()


def test_a_user_holds_at_most_the_allowed_sockets(live_url: str) -> None:
    person = Api(live_url, unique("cap"))
    open_ = [Listener(live_url, auth={"token": person.token}) for _ in range(CAP)]
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            Listener(live_url, auth={"token": person.token})
        other = Listener(live_url, auth={"token": Api(live_url, unique("cap2")).token})
        other.close()  # somebody else is not affected
        open_.pop().close()
        # A slot is free again once the server has seen the disconnect.
        for _attempt in range(50):
            try:
                open_.append(Listener(live_url, auth={"token": person.token}))
                break
            except socketio.exceptions.ConnectionError:
                threading.Event().wait(0.1)  # the disconnect is processed asynchronously
        else:
            pytest.fail("a closed socket never gave its slot back")
    finally:
        for listener in open_:
            listener.close()


@pytest.fixture(scope="module")
def shared_pg_url() -> Iterator[str]:
    with throwaway_pg_database("mkt_cut") as url:
        migrated(url)
        yield url


def test_a_token_revoked_on_one_process_cuts_its_socket_on_another(
        redis_url: str, shared_pg_url: str) -> None:
    env = {"REDIS_URL": redis_url, "SOCKETIO_CHANNEL": f"test-{uuid.uuid4().hex}",
           "EXPIRY_INTERVAL_SECONDS": "3600"}
    with server(shared_pg_url, **env) as process_a, server(shared_pg_url, **env) as process_b:
        person = Api(process_b, unique("far"))
        r = person.call("POST", "/tokens", json={"email": person.user["email"],
                                                 "password": person.password, "name": "phone"})
        token_id, token = r.json()["id"], r.json()["token"]
        listener = Watched(process_a, auth={"token": token})
        try:
            assert person.call("DELETE", f"/tokens/{token_id}").status_code == 204  # on B
            assert listener.gone.wait(10), "process A kept the socket of a revoked token"
        finally:
            listener.close()


@pytest.fixture(scope="module")
def moderated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    url, app = migrated_sqlite(tmp_path_factory, "moderated")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600") as base:
        yield base, app


def test_suspending_an_account_cuts_its_sockets_cookie_and_token(
        moderated: tuple[str, Any]) -> None:
    from marketplace.extensions import db
    from marketplace.moderation import services as moderation

    base, app = moderated
    admin, person = Api(base, unique("admin")), Api(base, unique("suspect"))
    with app.app_context():  # as `flask grant-admin EMAIL` does
        moderation.set_admin(admin.user["email"], True)
        db.engine.dispose()
    browser = person.sign_in_to_pages()
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    by_cookie = Watched(base, headers={"Cookie": cookie})
    by_token = Watched(base, auth={"token": person.token})
    try:
        r = admin.call("POST", "/admin/actions", json={
            "action": "suspend", "target_type": "user", "target_id": person.user["id"],
            "reason": "fraud"})
        assert r.status_code == 200, r.text
        assert by_cookie.gone.wait(10), "the web socket of a suspended account was not cut"
        assert by_token.gone.wait(10), "the token socket of a suspended account was not cut"
        assert person.call("GET", "/me").status_code == 401
        page = browser.get(base + "/account/sessions", timeout=10, allow_redirects=False)
        assert page.status_code == 302  # the old cookie signs nobody in
        with pytest.raises(socketio.exceptions.ConnectionError):
            Listener(base, auth={"token": person.token})
        with pytest.raises(socketio.exceptions.ConnectionError):
            Listener(base, headers={"Cookie": cookie})
    finally:
        by_cookie.close()
        by_token.close()
