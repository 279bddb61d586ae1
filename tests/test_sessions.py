"""Sessions that end: what an attacker holding an old cookie gets after the person signed out
(nothing), what a remember-me cookie is worth once used (nothing, it was rotated), and sign
out everywhere. Cookies are replayed the way a thief would: copied into a fresh client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import committed_rows
from flask.testing import FlaskClient

from marketplace.accounts.models import WebSession
from marketplace.db_types import utcnow
from marketplace.extensions import db


def signed_in(client: FlaskClient) -> bool:
    r = client.get("/needs")
    return r.status_code == 200


def sign_in(app: Any, person: Any, *, remember: bool = False) -> FlaskClient:
    client = app.test_client()
    form = {"email": person.user.email, "password": person.password}
    if remember:
        form["remember"] = "1"
    r = client.post("/signin", data=form)
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def cookie(client: FlaskClient, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found else None


def thief(app: Any, **cookies: str) -> FlaskClient:
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client


def test_a_replayed_session_cookie_signs_nobody_in_after_sign_out(app: Any,
                                                                  make_user: Any) -> None:
    person = make_user()
    victim = sign_in(app, person)
    stolen = cookie(victim, "session")
    assert signed_in(thief(app, session=stolen))  # while the session lives, it works
    victim.post("/signout")
    assert not signed_in(victim)
    assert not signed_in(thief(app, session=stolen))
    [row] = committed_rows(WebSession, user_id=person.user.id)
    assert row.revoked_at is not None


def test_a_replayed_remember_cookie_signs_nobody_in_after_sign_out(app: Any,
                                                                   make_user: Any) -> None:
    person = make_user()
    victim = sign_in(app, person, remember=True)
    stolen = cookie(victim, "remember_token")
    assert stolen
    victim.post("/signout")
    assert not signed_in(thief(app, remember_token=stolen))


def test_remember_tokens_are_random_per_sign_in_and_stored_hashed(app: Any,
                                                                  make_user: Any) -> None:
    person = make_user()
    tokens = [cookie(sign_in(app, person, remember=True), "remember_token") for _ in range(3)]
    assert len(set(tokens)) == 3
    stored = {row.key_hash for row in committed_rows(WebSession, user_id=person.user.id)}
    for token in tokens:
        assert not any(token.split("|")[0] in value for value in stored)


def test_a_used_remember_cookie_is_rotated_and_good_only_once(app: Any, make_user: Any) -> None:
    person = make_user()
    old = cookie(sign_in(app, person, remember=True), "remember_token")
    first = thief(app, remember_token=old)  # the browser, after its session cookie expired
    assert signed_in(first)
    new = cookie(first, "remember_token")
    assert new and new != old
    assert not signed_in(thief(app, remember_token=old))  # the used one is spent
    assert signed_in(thief(app, remember_token=new))


def test_each_sign_in_is_a_new_session(app: Any, make_user: Any) -> None:
    person = make_user()
    client = app.test_client()
    client.post("/signin", data={"email": person.user.email, "password": person.password})
    first = cookie(client, "session")
    client.post("/signin", data={"email": person.user.email, "password": person.password})
    assert cookie(client, "session") != first
    assert signed_in(client)
    assert not signed_in(thief(app, session=first))  # the session it replaced ended


def test_sign_out_everywhere_ends_every_session(app: Any, make_user: Any) -> None:
    person, other = make_user(), make_user()
    phone, laptop = sign_in(app, person), sign_in(app, person, remember=True)
    bystander = sign_in(app, other)
    remembered = cookie(laptop, "remember_token")
    page = phone.get("/account/sessions").get_data(as_text=True)
    assert page.count("Sign out session") == 2 and "(this browser)" in page
    phone.post("/account/sessions/end-all")
    assert not signed_in(phone)
    assert not signed_in(laptop)
    assert not signed_in(thief(app, remember_token=remembered))
    assert signed_in(bystander)  # another person's session is not touched


def test_signing_out_one_device_from_another(app: Any, make_user: Any) -> None:
    person, attacker = make_user(), make_user()
    phone, laptop = sign_in(app, person), sign_in(app, person)
    other = sign_in(app, attacker)
    rows = committed_rows(WebSession, user_id=person.user.id)
    laptop_row = max(rows, key=lambda r: r.id)
    # Somebody else cannot end it (nor learn that it exists).
    other.post(f"/account/sessions/{laptop_row.id}/end")
    assert signed_in(laptop)
    phone.post(f"/account/sessions/{laptop_row.id}/end")
    assert not signed_in(laptop)
    assert signed_in(phone)


def test_an_expired_session_signs_nobody_in(app: Any, make_user: Any) -> None:
    person = make_user()
    client = sign_in(app, person)
    [row] = committed_rows(WebSession, user_id=person.user.id)
    db.session.get(WebSession, row.id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert not signed_in(client)


def test_a_cookie_of_the_old_kind_signs_nobody_in(app: Any, make_user: Any) -> None:
    """Before server-side sessions the cookie held the user id; a forged or old one holding an
    id is no key to anything."""
    person = make_user()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(person.user.id)
        session["_fresh"] = True
    assert not signed_in(client)
