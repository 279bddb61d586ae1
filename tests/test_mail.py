"""Account mail over a real SMTP server (aiosmtpd, the ``mailbox`` fixture): confirming an
address, resetting a password, changing password and address -- each followed through the
link in the mail that arrived, the way a person (or an attacker holding a link) would."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta
from typing import Any

import pytest
from conftest import PUBLIC_URL, error_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pages import messages_shown, same_for_anyone
from sqlalchemy import func, select, update

from marketplace.accounts import services as accounts
from marketplace.accounts.models import AccountToken, User, WebSession
from marketplace.config import mail_settings
from marketplace.db_types import utcnow
from marketplace.extensions import db

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new password"


def sign_up(client: Any, email: str = "kit@example.com", **extra: Any) -> Any:
    body = {"email": email, "password": PASSWORD, "name": "Kit Cat", **extra}
    return client.post("/api/v1/users", json=body)


def user(email: str) -> User:
    found = accounts.find_by_email(email)
    assert found is not None
    db.session.refresh(found)
    return found


def signed_in(web: Any) -> bool:
    return web.get("/account/tokens").status_code == 200


# --- MAIL_URL -----------------------------------------------------------------------------------


def test_mail_url_becomes_flask_mailmans_settings() -> None:
    assert mail_settings("smtp://mailer:p%40ss@mail.example.com:587?tls=1") == {
        "MAIL_BACKEND": "smtp", "MAIL_SERVER": "mail.example.com", "MAIL_PORT": 587,
        "MAIL_USERNAME": "mailer", "MAIL_PASSWORD": "p@ss", "MAIL_USE_SSL": False,
        "MAIL_USE_TLS": True, "MAIL_TIMEOUT": 10.0}
    ssl = mail_settings("smtps://u:p@mail.example.com")
    assert (ssl["MAIL_PORT"], ssl["MAIL_USE_SSL"], ssl["MAIL_USE_TLS"]) == (465, True, False)
    plain = mail_settings("smtp://localhost")
    assert (plain["MAIL_PORT"], plain["MAIL_USERNAME"], plain["MAIL_USE_TLS"]) == (25, None, False)
    assert mail_settings(None) == {"MAIL_BACKEND": "console"}  # the demo: mail to the output
    with pytest.raises(ValueError, match="smtp"):
        mail_settings("http://mail.example.com")


# --- verifying an address -----------------------------------------------------------------------


def test_sign_up_mails_a_link_that_verifies_the_address_once(client, mailbox):
    r = sign_up(client, email="Kit@Example.com")
    assert r.status_code == 202, r.get_json()
    assert user("kit@example.com").verified_at is None
    [mail] = mailbox.to("kit@example.com")
    assert "Confirm your email" in mail.subject
    assert mail.message.get_body(preferencelist=("html",)) is not None  # and an HTML part
    path = mail.link(f"{PUBLIC_URL}/verify/")
    with db.engine.connect() as conn:  # only a hash of the link's token is stored
        stored = conn.scalars(select(AccountToken.token_hash)).all()
    assert path.rsplit("/", 1)[1] not in stored and len(stored) == 1

    r = client.get(path)
    assert r.status_code == 302
    assert user("kit@example.com").verified_at is not None
    again = client.get(path)  # single use
    assert again.status_code == 422 and "used already" in messages_shown(again)["e-token"]
    r = client.post("/api/v1/verification", json={"token": path.rsplit("/", 1)[1]})
    assert r.status_code == 422 and "token" in error_of(r)["fields"]


def test_a_wrong_or_expired_verification_link_is_refused(client, mailbox):
    sign_up(client)
    token = mailbox.last("kit@example.com").link().rsplit("/", 1)[1]
    for wrong in (token[:-1], token + "x", "x" * 100):
        r = client.post("/api/v1/verification", json={"token": wrong})
        assert r.status_code == 422 and "not valid" in error_of(r)["fields"]["token"][0]
    db.session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    r = client.post("/api/v1/verification", json={"token": token})
    assert r.status_code == 422 and "expired" in error_of(r)["fields"]["token"][0]
    assert user("kit@example.com").verified_at is None


def test_resending_retires_the_earlier_link(client, mailbox, make_user):
    kit = make_user(email="kit@example.com", verified=False)
    r = kit.post("/api/v1/me/verification")
    assert r.status_code == 202
    first = mailbox.last("kit@example.com").link()
    kit.post("/api/v1/me/verification")
    second = mailbox.last("kit@example.com").link()
    assert first != second
    assert client.get(first).status_code == 422
    assert client.get(second).status_code == 302
    assert kit.get("/api/v1/me").get_json()["verified_at"] is not None
    mailbox.mails.clear()
    r = kit.post("/api/v1/me/verification")
    assert r.status_code == 202 and "already" in r.get_json()["message"]
    assert mailbox.mails == []


# --- nobody learns who has an account ------------------------------------------------------------


def test_signing_up_with_a_taken_address_answers_the_same_and_mails_its_owner(client, mailbox,
                                                                               make_user):
    make_user(email="owner@example.com", name="Olive Owner")
    taken = sign_up(client, email="OWNER@example.com", name="Impostor")
    new = sign_up(client, email="newcomer@example.com")
    assert taken.status_code == new.status_code == 202
    assert taken.get_json() == {**new.get_json(), "email": "owner@example.com"}
    assert set(taken.headers.keys()) == set(new.headers.keys())
    [note] = mailbox.to("owner@example.com")
    assert "tried to sign up" in note.subject and "/verify/" not in note.text
    assert note.link(f"{PUBLIC_URL}/password-reset") == "/password-reset"
    assert user("owner@example.com").name == "Olive Owner"  # nothing changed
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(User)) == 2


def test_asking_for_a_reset_answers_the_same_for_any_address(client, mailbox, make_user):
    make_user(email="owner@example.com")
    known = client.post("/api/v1/password-reset", json={"email": "Owner@example.com"})
    unknown = client.post("/api/v1/password-reset", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == {**unknown.get_json(), "email": "owner@example.com"}
    assert [m.to for m in mailbox.mails] == [["owner@example.com"]]
    web_known = client.post("/password-reset", data={"email": "owner@example.com"})
    web_unknown = client.post("/password-reset", data={"email": "nobody@example.com"})
    assert web_known.status_code == web_unknown.status_code == 200
    assert same_for_anyone(web_known.get_data(as_text=True)).replace("owner@", "nobody@") == \
        same_for_anyone(web_unknown.get_data(as_text=True))


# --- resetting a password ------------------------------------------------------------------------


def test_a_reset_link_sets_the_password_once_and_ends_every_web_session(client, mailbox, make_user,
                                                                        auth):
    kit = make_user(email="kit@example.com")
    laptop, phone = auth.sign_in(kit), auth.sign_in(kit)
    assert signed_in(laptop) and signed_in(phone)
    client.post("/password-reset", data={"email": "kit@example.com"})
    path = mailbox.last("kit@example.com").link(f"{PUBLIC_URL}/password-reset/")
    assert "Choose a new password" in client.get(path).get_data(as_text=True)  # GET uses nothing
    r = client.post(path, data={"password": NEW_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/signin"
    assert not signed_in(laptop) and not signed_in(phone)
    assert kit.get("/api/v1/me").status_code == 200  # API tokens are not revoked
    assert "password was changed" in mailbox.last("kit@example.com").subject
    refused = client.post("/signin", data={"email": "kit@example.com", "password": PASSWORD})
    assert refused.status_code == 200
    auth.sign_in(email="kit@example.com", password=NEW_PASSWORD)
    again = client.post(path, data={"password": "yet another password"})  # single use
    assert again.status_code == 200 and "used already" in messages_shown(again)["e-token"]
    r = client.post("/api/v1/password-reset/confirm",
                    json={"token": path.rsplit("/", 1)[1], "password": "yet another password"})
    assert r.status_code == 422 and "token" in error_of(r)["fields"]
    auth.sign_in(email="kit@example.com", password=NEW_PASSWORD)  # still the first new one


def test_reset_links_refused_when_wrong_expired_or_superseded(client, mailbox, make_user):
    make_user(email="kit@example.com")
    client.post("/api/v1/password-reset", json={"email": "kit@example.com"})
    old = mailbox.last("kit@example.com").link().rsplit("/", 1)[1]
    client.post("/api/v1/password-reset", json={"email": "kit@example.com"})
    token = mailbox.last("kit@example.com").link().rsplit("/", 1)[1]

    def confirm(value: str) -> Any:
        return client.post("/api/v1/password-reset/confirm",
                           json={"token": value, "password": NEW_PASSWORD})

    for wrong in (old, token[:-1], "nonsense"):
        r = confirm(wrong)
        assert r.status_code == 422 and set(error_of(r)["fields"]) == {"token"}, wrong
    r = client.post("/api/v1/password-reset/confirm", json={"token": token, "password": "short"})
    assert r.status_code == 422 and set(error_of(r)["fields"]) == {"password"}
    db.session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    r = confirm(token)
    assert r.status_code == 422 and "expired" in error_of(r)["fields"]["token"][0]
    assert accounts.verify_password(user("kit@example.com"), PASSWORD)  # unchanged throughout


def test_a_reset_link_lasts_an_hour(client, mailbox, make_user):
    make_user(email="kit@example.com")
    client.post("/api/v1/password-reset", json={"email": "kit@example.com"})
    row = db.session.scalar(select(AccountToken))
    assert row.kind == "reset"
    assert timedelta(minutes=59) < row.expires_at - row.created_at <= timedelta(hours=1)


# --- changing password and address ---------------------------------------------------------------


def test_changing_the_password_ends_the_other_web_sessions_only(make_user, auth, mailbox):
    kit = make_user(email="kit@example.com")
    here, elsewhere = auth.sign_in(kit), auth.sign_in(kit)
    r = here.post("/account/password", data={"current_password": "not it", "password": NEW_PASSWORD})
    assert r.status_code == 200 and "not your password" in messages_shown(r)["e-current_password"]
    assert signed_in(elsewhere)
    r = here.post("/account/password",
                  data={"current_password": PASSWORD, "password": NEW_PASSWORD})
    assert r.status_code == 302
    assert signed_in(here) and not signed_in(elsewhere)
    assert accounts.verify_password(user("kit@example.com"), NEW_PASSWORD)
    assert "password was changed" in mailbox.last("kit@example.com").subject


def test_changing_the_password_over_the_api_needs_the_current_one(make_user, auth):
    kit = make_user(email="kit@example.com")
    web = auth.sign_in(kit)
    r = kit.post("/api/v1/me/password", json={"current_password": "wrong one",
                                               "password": NEW_PASSWORD})
    assert r.status_code == 403 and set(error_of(r)["fields"]) == {"current_password"}
    assert signed_in(web)
    r = kit.post("/api/v1/me/password", json={"current_password": PASSWORD,
                                               "password": NEW_PASSWORD})
    assert r.status_code == 204
    assert not signed_in(web)  # no web session is the caller's own
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(WebSession)
                           .where(WebSession.revoked_at.is_(None))) == 0


def test_changing_the_address_takes_the_link_mailed_to_the_new_one(client, make_user, mailbox):
    kit = make_user(email="kit@example.com")
    r = kit.post("/api/v1/me/email", json={"email": "Kit.New@example.com", "password": "wrong"})
    assert r.status_code == 403 and set(error_of(r)["fields"]) == {"password"}
    r = kit.post("/api/v1/me/email", json={"email": "Kit.New@example.com", "password": PASSWORD})
    assert r.status_code == 202
    notice = mailbox.last("kit@example.com")
    assert "kit.new@example.com" in notice.text and "/email-change/" not in notice.text
    path = mailbox.last("kit.new@example.com").link(f"{PUBLIC_URL}/email-change/")
    assert client.get(path).status_code == 200
    assert user("kit@example.com").email == "kit@example.com"  # opening the page changes nothing
    r = client.post(path)
    assert r.status_code == 302
    moved = kit.get("/api/v1/me").get_json()
    assert moved["email"] == "kit.new@example.com" and moved["verified_at"] is not None
    assert "was changed" in mailbox.last("kit@example.com").subject
    again = client.post(path)
    assert again.status_code == 200 and "used already" in messages_shown(again)["e-token"]


def test_an_address_taken_by_another_account_gets_no_link_and_the_same_answer(make_user, mailbox):
    kit = make_user(email="kit@example.com")
    make_user(email="taken@example.com")
    free = kit.post("/api/v1/me/email", json={"email": "free@example.com", "password": PASSWORD})
    mailbox.mails.clear()
    taken = kit.post("/api/v1/me/email", json={"email": "taken@example.com", "password": PASSWORD})
    assert taken.status_code == free.status_code == 202
    assert taken.get_json()["message"] == free.get_json()["message"]
    assert mailbox.to("taken@example.com") == []


def test_an_address_taken_after_the_link_was_sent_is_refused(client, make_user, mailbox):
    kit = make_user(email="kit@example.com")
    kit.post("/api/v1/me/email", json={"email": "wanted@example.com", "password": PASSWORD})
    token = mailbox.last("wanted@example.com").link().rsplit("/", 1)[1]
    make_user(email="wanted@example.com")
    r = client.post("/api/v1/email-change/confirm", json={"token": token})
    assert r.status_code == 422 and "another account" in error_of(r)["fields"]["token"][0]
    assert user("kit@example.com").email == "kit@example.com"


# --- ratings of unverified accounts ---------------------------------------------------------------


def test_throwaway_unverified_accounts_do_not_move_a_providers_score(client, make_user,
                                                                     make_provider, make_job,
                                                                     mailbox):
    pro = make_provider()
    make_job(make_user(), pro, stars=2)  # one real, verified customer

    def reputation() -> dict[str, Any]:
        """What the ratings make of it (jobs done count whoever the customer is)."""
        rep = client.get(f"/api/v1/providers/{pro.provider.handle}").get_json()["reputation"]
        return {k: rep[k] for k in ("count", "mean", "score", "histogram", "sub_scores")}

    before = reputation()
    throwaways = [make_user(verified=False) for _ in range(3)]
    for sock in throwaways:
        make_job(sock, pro, stars=5)
    assert reputation() == before
    for sock in throwaways:
        sock.post("/api/v1/me/verification")
        assert client.get(mailbox.last(sock.user.email).link()).status_code == 302
    after = reputation()
    assert after["count"] == 4 and after["histogram"]["5"] == 3
    assert after["score"] > before["score"]


def test_a_mail_server_that_is_down_changes_no_answer(app, client, mailbox, monkeypatch, caplog):
    """Sending is logged when it fails, and the answer is what it always is (a failure that
    showed would tell which addresses have accounts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setattr(app.extensions["mailman"], "port", closed)
    # Alembic's logging set-up (the migrations the fixtures run) disables loggers made before it.
    monkeypatch.setattr(logging.getLogger("marketplace.mail"), "disabled", False)
    r = sign_up(client)
    assert r.status_code == 202
    assert client.post("/api/v1/password-reset", json={"email": "kit@example.com"}).status_code == 202
    assert mailbox.mails == [], [m.to for m in mailbox.mails]
    assert "could not send the 'verify' mail" in caplog.text


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(guess=st.text(min_size=1, max_size=100).filter(lambda t: "\x00" not in t),
       kind=st.sampled_from(["verification", "password-reset/confirm", "email-change/confirm"]))
def test_no_guessed_token_is_taken_for_any_link(client, make_user, mailbox, guess, kind):
    """Whatever is sent as a token that was not mailed -- near misses of a real one, another
    kind's, anything -- is a 422 naming ``token`` and changes nothing."""
    kit = accounts.find_by_email("kit@example.com") or make_user(email="kit@example.com",
                                                                 verified=False).user
    kit.verified_at = None
    db.session.commit()
    real = {}
    for path, name in (("verify", "verification"), ("password-reset", "password-reset/confirm")):
        if path == "verify":
            accounts.send_verification(kit)
        else:
            accounts.request_password_reset(kit.email)
        real[name] = mailbox.last(kit.email).link().rsplit("/", 1)[1]
    assert guess not in real.values()
    body = {"token": guess, **({"password": NEW_PASSWORD} if "password" in kind else {})}
    r = client.post(f"/api/v1/{kind}", json=body)
    assert r.status_code == 422 and "token" in error_of(r)["fields"], r.get_json()
    for other in [real[k] for k in real if k != kind]:  # another kind's real token
        r = client.post(f"/api/v1/{kind}", json={**body, "token": other})
        assert r.status_code == 422 and "token" in error_of(r)["fields"]
    fresh = user("kit@example.com")
    assert fresh.verified_at is None and accounts.verify_password(fresh, PASSWORD)


def test_taking_back_an_address_someone_registered_ends_their_tokens(client, mailbox,
                                                                     make_user):
    """An attacker registers the victim's address first (never confirmed) and keeps an API
    token; the owner resets the password through the link mailed to them: the attacker's
    token is dead, and the address now counts as confirmed."""
    squatter = make_user(email="owner@example.com", verified=False)
    assert squatter.get("/api/v1/me").status_code == 200
    client.post("/api/v1/password-reset", json={"email": "owner@example.com"})
    token = mailbox.last("owner@example.com").link(f"{PUBLIC_URL}/password-reset/").rsplit("/", 1)[1]
    r = client.post("/api/v1/password-reset/confirm", json={"token": token,
                                                            "password": NEW_PASSWORD})
    assert r.status_code == 204, r.get_data(as_text=True)
    assert squatter.get("/api/v1/me").status_code == 401
    assert user("owner@example.com").verified_at is not None
