"""Accounts: registration, password hashing, sign-in, personal API tokens, /me, web sessions.

Service-level tests call ``marketplace.accounts.services`` inside the app; API tests go through
HTTP. "Nothing changes" is checked against the committed database through its own connection.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from conftest import committed_state, error_of
from pages import dom, field_error, field_errors, same_for_anyone, value_of
from sqlalchemy import func, select

from marketplace.accounts import services as accounts
from marketplace.accounts.auth import TOKEN_PREFIX, hash_token
from marketplace.accounts.models import ApiToken, User
from marketplace.errors import Conflict, NotFound, Unauthorized
from marketplace.extensions import db

PASSWORD = "long enough password"


def count_users() -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(User)) or 0


def register(client: Any, **overrides: Any) -> Any:
    body = {"email": "cat@example.com", "password": PASSWORD, "name": "Cat", **overrides}
    return client.post("/api/v1/users", json=body)


def sign_in(client: Any, email: str = "cat@example.com", password: str = PASSWORD,
            **extra: Any) -> Any:
    return client.post("/api/v1/tokens", json={"email": email, "password": password, **extra})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- registration ---------------------------------------------------------------------------


def test_register_normalises_email_and_never_returns_the_password(client):
    r = register(client, email="Cat.Person@Example.COM", phone="+1 512 555 0100")
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert set(body) == {"email", "message"}  # the same answer for a taken address
    assert body["email"] == "cat.person@example.com"
    assert PASSWORD not in r.get_data(as_text=True)
    user = accounts.find_by_email("cat.person@example.com")
    assert user.name == "Cat" and user.phone == "+1 512 555 0100"
    assert user.verified_at is None


def test_password_is_stored_as_an_argon2id_hash(client):
    register(client)
    user = accounts.find_by_email("cat@example.com")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    other = accounts.register("dog@example.com", PASSWORD, "Dog")
    assert other.password_hash != user.password_hash  # salted


def test_a_taken_email_answers_like_a_new_one_and_changes_nothing(client):
    """No account enumeration: whatever the case, a taken address gets the new one's answer
    (tests/test_mail.py checks the mail its owner gets instead)."""
    first = register(client)
    assert first.status_code == 202
    before = committed_state()
    r = register(client, email="CAT@example.com", name="Impostor")
    assert (r.status_code, r.get_json()) == (first.status_code, first.get_json())
    assert committed_state() == before


def test_service_register_normalises_and_refuses_duplicates(app):
    user = accounts.register("  Mixed@Case.Example ", PASSWORD, "Mixed")
    assert user.email == "mixed@case.example"
    with pytest.raises(Conflict) as exc:
        accounts.register("MIXED@case.example", PASSWORD, "Again")
    assert "email" in exc.value.fields
    assert count_users() == 1


@pytest.mark.parametrize("overrides, field", [
    ({"password": "short"}, "password"),
    ({"password": "x" * 201}, "password"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "a" * 250 + "@example.com"}, "email"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "n" * 101}, "name"),
    ({"name": 42}, "name"),
    ({"id": 5}, "id"),
    ({"password_hash": "$argon2id$forged"}, "password_hash"),
    ({"provider": {"handle": "sneaky"}}, "provider"),
])
def test_register_rejects_bad_input_naming_the_field(client, overrides, field):
    r = register(client, **overrides)
    assert r.status_code == 422
    assert field in error_of(r)["fields"]
    assert count_users() == 0


def test_register_requires_each_field(client):
    r = client.post("/api/v1/users", json={})
    assert r.status_code == 422
    assert set(error_of(r)["fields"]) == {"email", "password", "name"}


def test_register_with_malformed_json_is_400_with_the_error_shape(client):
    r = client.post("/api/v1/users", data="{not json", content_type="application/json")
    assert r.status_code == 400
    assert error_of(r)["code"] == "bad_request"
    assert count_users() == 0


# --- signing in: POST /api/v1/tokens --------------------------------------------------------


def test_sign_in_returns_a_token_that_works(client):
    register(client)
    r = sign_in(client, name="my laptop")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["token"].startswith(TOKEN_PREFIX)
    assert body["name"] == "my laptop"
    assert body["token"].startswith(body["prefix"]) and len(body["prefix"]) < len(body["token"])
    me = client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.get_json()["email"] == "cat@example.com"


def test_sign_in_email_is_case_and_space_insensitive(client):
    register(client)
    assert sign_in(client, email="  CAT@Example.com ").status_code == 201


def test_wrong_password_and_unknown_email_are_the_same_401(client):
    register(client)
    wrong = sign_in(client, password="not the password")
    unknown = sign_in(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    wrong_error, unknown_error = error_of(wrong), error_of(unknown)
    assert wrong_error["code"] == "unauthorized"
    assert wrong_error["message"] == unknown_error["message"]
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_service_authenticate(app):
    user = accounts.register("cat@example.com", PASSWORD, "Cat")
    assert accounts.authenticate("Cat@Example.com", PASSWORD).id == user.id
    with pytest.raises(Unauthorized):
        accounts.authenticate("cat@example.com", PASSWORD + "!")
    with pytest.raises(Unauthorized):
        accounts.authenticate("ghost@example.com", PASSWORD)


def test_sign_in_rejects_unknown_fields(client):
    register(client)
    r = sign_in(client, user_id=1)
    assert r.status_code == 422
    assert "user_id" in error_of(r)["fields"]


# --- tokens ---------------------------------------------------------------------------------


def test_tokens_are_stored_only_as_hashes(client):
    register(client)
    raw = sign_in(client).get_json()["token"]
    with db.engine.connect() as conn:
        rows = conn.execute(select(ApiToken.__table__)).mappings().all()
    assert len(rows) == 1
    row = rows[0]
    assert row["token_hash"] == hashlib.sha256(raw.encode()).hexdigest() == hash_token(raw)
    assert all(raw not in str(value) for value in row.values())


def test_service_create_token_returns_the_value_once(app, make_user):
    person = make_user()
    token, raw = accounts.create_token(person.user, "ci")
    assert token.token_hash == hash_token(raw) and token.name == "ci"
    assert not hasattr(token, "token")
    assert raw not in {token.token_hash, token.prefix}


def test_token_list_shows_names_but_never_values(make_user):
    person = make_user()
    _t, second = accounts.create_token(person.user, "second")
    r = person.get("/api/v1/tokens")
    assert r.status_code == 200
    tokens = r.get_json()["items"]
    assert [t["name"] for t in tokens] == ["second", "tests"]  # newest first
    text = r.get_data(as_text=True)
    assert person.token not in text and second not in text
    for t in tokens:
        assert set(t) == {"id", "name", "prefix", "created_at", "last_used_at"}
    # The token used for this request is marked as used.
    used = next(t for t in tokens if t["name"] == "tests")
    assert used["last_used_at"] is not None


def test_token_list_shows_only_your_own(make_user):
    alice, bob = make_user(), make_user()
    accounts.create_token(bob.user, "bob's other")
    names = [t["name"] for t in alice.get("/api/v1/tokens").get_json()["items"]]
    assert names == ["tests"]


def test_revoking_a_token_makes_it_stop_working(make_user):
    person = make_user()
    spare, spare_raw = accounts.create_token(person.user, "spare")
    first_id = accounts.list_tokens(person.user)[-1].id
    r = person.delete(f"/api/v1/tokens/{first_id}")
    assert r.status_code == 204
    r = person.get("/api/v1/me")
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"
    r = person.client.get("/api/v1/tokens", headers=bearer(spare_raw))
    assert [t["id"] for t in r.get_json()["items"]] == [spare.id]


def test_cannot_revoke_someone_elses_token(make_user):
    alice, bob = make_user(), make_user()
    bobs_id = accounts.list_tokens(bob.user)[0].id
    before = committed_state()
    r = alice.delete(f"/api/v1/tokens/{bobs_id}")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"
    assert committed_state() == before
    assert bob.get("/api/v1/me").status_code == 200


def test_revoking_an_unknown_token_is_404(make_user):
    person = make_user()
    r = person.delete("/api/v1/tokens/987654")
    assert r.status_code == 404
    error_of(r)


def test_service_revoke_token(app, make_user):
    alice, bob = make_user(), make_user()
    bobs = accounts.list_tokens(bob.user)[0]
    with pytest.raises(NotFound):
        accounts.revoke_token(alice.user, bobs.id)
    accounts.revoke_token(bob.user, bobs.id)
    assert accounts.list_tokens(bob.user) == []


def test_token_limit_per_user(app, make_user):
    person = make_user()  # already holds one token
    for n in range(accounts.MAX_TOKENS_PER_USER - 1):
        accounts.create_token(person.user, f"t{n}")
    with pytest.raises(Conflict):
        accounts.create_token(person.user, "one too many")
    assert len(accounts.list_tokens(person.user)) == accounts.MAX_TOKENS_PER_USER


@pytest.mark.parametrize("header", [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer not-a-real-token",
    "Basic dXNlcjpwYXNz",
    "Token mkt_whatever",
])
def test_missing_or_bad_bearer_is_401(client, make_user, header):
    person = make_user()
    headers = {} if header is None else {"Authorization": header}
    for method, url in (("get", "/api/v1/me"), ("get", "/api/v1/tokens"),
                        ("patch", "/api/v1/me"), ("post", "/api/v1/needs")):
        r = getattr(client, method)(url, headers=headers, json={})
        assert r.status_code == 401, (method, url, r.get_json())
        assert error_of(r)["code"] == "unauthorized"
    assert db.session.get(User, person.user.id).name == person.user.name


def test_bearer_scheme_name_is_case_insensitive(client, make_user):
    person = make_user()
    r = client.get("/api/v1/me", headers={"Authorization": f"bearer {person.token}"})
    assert r.status_code == 200


def test_revoking_an_out_of_range_token_id_is_404(make_user):
    person = make_user()
    r = person.delete("/api/v1/tokens/99999999999999999999999")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


# --- /me ------------------------------------------------------------------------------------


def test_me_shows_provider_null_then_the_profile(make_user):
    person = make_user(name="Pat", phone="+44 20 7946 0000")
    r = person.get("/api/v1/me")
    assert r.status_code == 200
    body = r.get_json()
    assert body["provider"] is None
    assert body["id"] == person.user.id and body["name"] == "Pat"
    assert body["phone"] == "+44 20 7946 0000"
    assert not any("password" in key for key in body)
    r = person.put("/api/v1/me/provider", json={
        "handle": "pat-caters", "display_name": "Pat Caters", "categories": ["catering"],
        "base": {"lat": 30.27, "lon": -97.74}, "radius_km": 15, "active": True})
    assert r.status_code == 200, r.get_json()
    provider = person.get("/api/v1/me").get_json()["provider"]
    assert provider["handle"] == "pat-caters"
    assert provider["categories"] == ["catering"]
    assert provider["base"] == {"lat": 30.27, "lon": -97.74}
    assert provider["id"] == r.get_json()["id"]


def test_patch_me_changes_name_and_phone(make_user):
    person = make_user(name="Old Name", phone="123")
    r = person.patch("/api/v1/me", json={"name": "  New Name  ", "phone": "+1 555 0100"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["name"] == "New Name" and r.get_json()["phone"] == "+1 555 0100"
    r = person.patch("/api/v1/me", json={"phone": None})
    assert r.status_code == 200 and r.get_json()["phone"] is None
    assert r.get_json()["name"] == "New Name"  # untouched when absent
    with db.engine.connect() as conn:
        row = conn.execute(select(User.name, User.phone).where(User.id == person.user.id)).one()
    assert tuple(row) == ("New Name", None)


def test_patch_me_with_empty_body_changes_nothing(make_user):
    person = make_user(name="Same")
    before = committed_state()
    r = person.patch("/api/v1/me", json={})
    assert r.status_code == 200 and r.get_json()["name"] == "Same"
    assert committed_state() == before


@pytest.mark.parametrize("body, field", [
    ({"email": "new@example.com"}, "email"),
    ({"id": 5}, "id"),
    ({"password_hash": "x"}, "password_hash"),
    ({"password": "another long password"}, "password"),
    ({"provider": None}, "provider"),
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"phone": "1" * 41}, "phone"),
])
def test_patch_me_rejects_bad_or_protected_fields(make_user, body, field):
    person = make_user()
    before = committed_state()
    r = person.patch("/api/v1/me", json=body)
    assert r.status_code == 422
    assert field in error_of(r)["fields"]
    assert committed_state() == before


def test_service_update_profile_only_touches_name_and_phone(app, make_user):
    person = make_user(name="A", phone="1")
    accounts.update_profile(person.user, {"name": "B", "email": "evil@example.com"})
    db.session.expire_all()
    user = db.session.get(User, person.user.id)
    assert (user.name, user.phone) == ("B", "1")
    assert user.email != "evil@example.com"


# --- web session ----------------------------------------------------------------------------


@pytest.fixture
def web(auth):
    """A browser of its own, signed in as nobody (its cookies are not shared with the API
    persons)."""
    return auth.client()


def web_sign_up(web: Any, **overrides: Any) -> Any:
    form = {"name": "Web Cat", "email": "web@example.com", "password": PASSWORD, **overrides}
    return web.post("/signup", data=form)


def web_join(web: Any) -> None:
    """Sign up through the page, then sign in (sign-up signs nobody in)."""
    web_sign_up(web)
    r = web.post("/signin", data={"email": "web@example.com", "password": PASSWORD})
    assert r.status_code == 302


def test_signup_page_renders(web):
    r = web.get("/signup")
    assert r.status_code == 200
    form = dom(r).find("form")
    assert form is not None
    assert {i.attrs["name"] for i in form.find_all("input")} == {"csrf_token", "name", "email",
                                                                "password"}


def test_signup_says_check_your_mail_then_you_sign_in_and_out(web, auth):
    r = web_sign_up(web, email="Web@Example.com")
    assert r.status_code == 200 and "Check your mail" in r.get_data(as_text=True)
    assert accounts.find_by_email("web@example.com") is not None
    assert "Signed in as" not in web.get("/").get_data(as_text=True)  # that would tell
    assert web.post("/signin", data={"email": "web@example.com",
                                     "password": PASSWORD}).status_code == 302
    home = web.get("/").get_data(as_text=True)
    assert "Signed in as <strong>Web Cat</strong>" in home
    assert web.get("/account/tokens").status_code == 200
    auth.sign_out(web)
    assert "Signed in as" not in web.get("/").get_data(as_text=True)
    r = web.get("/account/tokens")
    assert r.status_code == 302 and "/signin" in r.headers["Location"]


def test_signup_short_password_shows_the_error_next_to_the_field(web):
    r = web_sign_up(web, password="short")
    assert r.status_code == 200
    page = dom(r)
    assert "10" in field_error(page, "password")
    assert field_errors(page).keys() == {"password"}
    assert value_of(page, "email") == "web@example.com"  # what was typed is kept
    assert count_users() == 0


def test_signup_with_a_taken_email_shows_the_same_page_as_a_new_one(web):
    accounts.register("web@example.com", PASSWORD, "First")
    taken = web_sign_up(web, email="WEB@example.com")
    new = web_sign_up(web, email="new@example.com")
    assert taken.status_code == new.status_code == 200
    assert same_for_anyone(taken.get_data(as_text=True)).replace(
        "web@example.com", "new@example.com") == same_for_anyone(new.get_data(as_text=True))
    assert "Signed in as" not in web.get("/").get_data(as_text=True)
    assert count_users() == 2


def test_signin_and_wrong_password_pages(web):
    accounts.register("web@example.com", PASSWORD, "Web Cat")
    r = web.post("/signin", data={"email": "web@example.com", "password": "wrong password"})
    assert r.status_code == 200
    assert "Email or password is wrong." in r.get_data(as_text=True)
    assert "Signed in as" not in web.get("/").get_data(as_text=True)
    r = web.post("/signin", data={"email": "WEB@example.com", "password": PASSWORD})
    assert r.status_code == 302
    assert "Signed in as <strong>Web Cat</strong>" in web.get("/").get_data(as_text=True)


def test_refused_forms_re_render_with_200(web):
    """The web forms' documented contract (needs/views.py): a form re-rendered with its errors is
    a page that loaded fine; the JSON API is where status codes carry the meaning."""
    r = web_sign_up(web, password="short")
    assert r.status_code == 200 and field_error(r, "password")
    accounts.register("taken@example.com", PASSWORD, "First")
    r = web.post("/signin", data={"email": "taken@example.com", "password": "wrong password"})
    assert r.status_code == 200 and "Email or password is wrong." in r.get_data(as_text=True)


@pytest.mark.parametrize("target, expected", [
    ("/account/tokens", "/account/tokens"),
    ("//evil.example.com/phish", "/"),
    ("https://evil.example.com/", "/"),
    ("/\\evil.example.com", "/"),
])
def test_signin_redirects_only_within_the_site(web, target, expected):
    accounts.register("web@example.com", PASSWORD, "Web Cat")
    r = web.post(f"/signin?next={target}", data={"email": "web@example.com", "password": PASSWORD})
    assert r.status_code == 302
    assert r.headers["Location"] == expected


def test_account_tokens_requires_login(web):
    r = web.get("/account/tokens")
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/signin")
    r = web.post("/account/tokens", data={"name": "x"})
    assert r.status_code == 302
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_account_tokens_creates_shows_once_and_revokes(web, client):
    web_join(web)
    user = accounts.find_by_email("web@example.com")
    r = web.post("/account/tokens", data={"name": "my script"})
    assert r.status_code == 200
    shown = dom(r).by_id("new-token")
    assert shown is not None and shown.tag == "code", r.get_data(as_text=True)
    raw = shown.text()
    assert client.get("/api/v1/me", headers=bearer(raw)).get_json()["id"] == user.id
    listing = web.get("/account/tokens").get_data(as_text=True)
    assert "my script" in listing and raw not in listing
    token = accounts.list_tokens(user)[0]
    r = web.post(f"/account/tokens/{token.id}/revoke")
    assert r.status_code == 302
    assert "Token revoked." in web.get("/account/tokens").get_data(as_text=True)
    assert client.get("/api/v1/me", headers=bearer(raw)).status_code == 401


def test_account_tokens_rejects_a_blank_name(web):
    web_join(web)
    r = web.post("/account/tokens", data={"name": "   "})
    page = dom(r)
    assert field_error(page, "name") == "Type a name of up to 80 characters."  # people's words
    assert page.by_id("new-token") is None
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_web_cannot_revoke_someone_elses_token(web, make_user):
    victim = make_user()
    victim_token = accounts.list_tokens(victim.user)[0]
    web_join(web)
    r = web.post(f"/account/tokens/{victim_token.id}/revoke")
    assert r.status_code == 302
    assert "You have no token with that id." in web.get("/account/tokens").get_data(as_text=True)
    assert victim.get("/api/v1/me").status_code == 200


def test_argon2_runs_off_the_event_loop_under_gevent(app: Any) -> None:
    """Under the gevent server a password hash runs in the hub's thread pool (argon2-cffi
    releases the GIL), so the loop keeps serving; elsewhere, and for the benchmark's baseline,
    inline. bench/signin.py measures what it is worth."""
    import threading

    from marketplace.accounts.services import off_the_loop

    def where() -> int:
        return threading.get_ident()

    here = threading.get_ident()
    assert off_the_loop(where) == here  # tests run in threading mode
    mode = app.config["SOCKETIO_ASYNC_MODE"]
    app.config["SOCKETIO_ASYNC_MODE"] = "gevent"
    try:
        assert off_the_loop(where) != here
        app.config["PASSWORD_HASH_INLINE"] = True
        assert off_the_loop(where) == here
    finally:
        app.config["SOCKETIO_ASYNC_MODE"] = mode
        app.config["PASSWORD_HASH_INLINE"] = False
