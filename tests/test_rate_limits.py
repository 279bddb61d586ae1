"""The rate limits on guessing and posting (docs/api.md, "Rate limits"), tried the way an
attacker would: many wrong passwords for one account (from one address and from many), many
accounts from one address, floods of sign-ups and of needs. Each limit is set small here
(``rate_limits``); the defaults are in config.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from conftest import committed_count, committed_rows, error_of, migrated_sqlite, need_data
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_concurrency import race

from marketplace.accounts.models import ApiToken, User
from marketplace.app import trust_proxies
from marketplace.extensions import db, tried_email_key
from marketplace.messages.models import Message
from marketplace.needs.models import Need


def from_ip(address: str) -> dict[str, Any]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def token_attempt(client: Any, email: str, password: str, ip: str = "203.0.113.9") -> Any:
    return client.post("/api/v1/tokens", json={"email": email, "password": password},
                       **from_ip(ip))


def assert_refused(r: Any) -> dict[str, Any]:
    """A 429 in the one error shape, with a Retry-After a client can wait out."""
    assert r.status_code == 429, (r.status_code, r.get_data(as_text=True))
    error = error_of(r)
    assert (error["status"], error["code"]) == (429, "too_many_requests")
    assert 0 < int(r.headers["Retry-After"]) <= 86400
    return error


# --- sign-in ----------------------------------------------------------------------------------


def test_forty_wrong_passwords_for_one_account_get_five_guesses_then_429(
        client: Any, make_user: Any, rate_limits: Any) -> None:
    """An attacker tries 40 passwords for one account, each from another address (so the
    per-IP limit does not save it): the per-account budget of 5 failures a minute lets 5 be
    judged; the other 35 are 429 with Retry-After. The right password is refused too while
    the window lasts (else a success would tell the attacker which guess was right), and no
    token is made. Another account is unaffected."""
    rate_limits(RATE_LIMIT_SIGNIN="5 per minute;20 per hour", RATE_LIMIT_SIGNIN_PER_IP="1000 per hour")
    victim, other = make_user(), make_user()
    tokens = len(committed_rows(ApiToken, user_id=victim.user.id))
    answers = [token_attempt(client, victim.user.email, f"guess-{i}", ip=f"198.51.100.{i}")
               for i in range(40)]
    assert [r.status_code for r in answers[:5]] == [401] * 5
    for r in answers[5:]:
        assert_refused(r)
    assert "5 per 1 minute" in error_of(answers[-1])["message"]

    # The same account, typed differently, is the same account.
    assert_refused(token_attempt(client, f"  {victim.user.email.upper()} ", victim.password))
    assert_refused(token_attempt(client, victim.user.email, victim.password))
    assert len(committed_rows(ApiToken, user_id=victim.user.id)) == tokens  # none was made

    r = token_attempt(client, other.user.email, other.password)
    assert r.status_code == 201, r.get_json()


def test_right_passwords_do_not_spend_the_failure_budget(
        client: Any, make_user: Any, rate_limits: Any) -> None:
    """Only failures count per account: a script that signs in twenty times a minute with
    the right password is never refused, and its failures still are budgeted."""
    rate_limits(RATE_LIMIT_SIGNIN="5 per minute", RATE_LIMIT_SIGNIN_PER_IP="1000 per hour")
    person = make_user()
    for _ in range(4):
        assert token_attempt(client, person.user.email, "wrong").status_code == 401
    for _ in range(20):
        assert token_attempt(client, person.user.email, person.password).status_code == 201
    assert token_attempt(client, person.user.email, "wrong").status_code == 401  # the fifth
    assert_refused(token_attempt(client, person.user.email, person.password))


def test_parallel_wrong_guesses_cannot_overshoot_the_budget(
        app: Flask, make_user: Any, rate_limits: Any) -> None:
    """Twenty wrong passwords released together: each is counted as it arrives, so exactly
    five are judged (a count taken after the answer would let all twenty through)."""
    rate_limits(RATE_LIMIT_SIGNIN="5 per minute", RATE_LIMIT_SIGNIN_PER_IP="1000 per hour")
    email = make_user().user.email

    def guesser(i: int) -> Any:
        def prepare() -> Any:
            client = app.test_client()
            return lambda: token_attempt(client, email, f"guess-{i}",
                                         ip=f"198.51.100.{i}").status_code
        return prepare

    outcomes = race(app, [guesser(i) for i in range(20)])
    codes = sorted(o.value for o in outcomes if o.ok)
    assert len(codes) == 20, [o.error for o in outcomes if not o.ok]
    assert codes == [401] * 5 + [429] * 15


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.emails(), st.lists(st.booleans(), min_size=1), st.sampled_from(["", " ", "\t", "  "]))
def test_every_spelling_of_an_email_is_one_account(app: Flask, email: str, upper: list[bool],
                                                   pad: str) -> None:
    """The per-account key is the email as accounts store it: case and surrounding space do
    not make a new budget (else ``Victim@x`` and ``victim@x `` would each get their own)."""
    spelled = pad + "".join(c.upper() if upper[i % len(upper)] else c.lower()
                            for i, c in enumerate(email)) + pad
    keys = set()
    for body in ({"email": email}, {"email": spelled}):
        with app.test_request_context("/api/v1/tokens", method="POST", json=body):
            keys.add(tried_email_key())
    with app.test_request_context("/signin", method="POST", data={"email": spelled}):
        keys.add(tried_email_key())
    assert len(keys) == 1 and email.lower() not in next(iter(keys))


def test_the_web_form_and_the_api_share_the_budget_and_the_page_is_styled(
        client: Any, auth: Any, make_user: Any, rate_limits: Any) -> None:
    rate_limits(RATE_LIMIT_SIGNIN="3 per minute", RATE_LIMIT_SIGNIN_PER_IP="1000 per hour")
    person = make_user()
    browser = auth.client()
    for _ in range(2):
        page = browser.post("/signin", data={"email": person.user.email, "password": "nope"})
        assert page.status_code == 200  # the form again, with its error
    assert token_attempt(client, person.user.email, "nope").status_code == 401
    page = browser.post("/signin", data={"email": person.user.email,
                                         "password": person.password})
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Too many requests" in page.get_data(as_text=True)
    assert "Retry-After" in page.headers
    assert browser.get("/signin").status_code == 200  # only POST is limited


def test_the_lockout_ends_with_its_window(client: Any, make_user: Any, rate_limits: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Failing sign-ins for someone else's email locks them out for the window, not for
    ever: once it has passed, the right password works again."""
    import limits.storage.memory as memory

    rate_limits(RATE_LIMIT_SIGNIN="3 per minute", RATE_LIMIT_SIGNIN_PER_IP="1000 per hour")
    person = make_user()
    for _ in range(3):
        token_attempt(client, person.user.email, "nope")
    assert_refused(token_attempt(client, person.user.email, person.password))

    real = memory.time.time

    class Later:
        @staticmethod
        def time() -> float:
            return real() + 61

    monkeypatch.setattr(memory, "time", Later)
    assert token_attempt(client, person.user.email, person.password).status_code == 201


def test_rotating_emails_from_one_address_hits_the_address_limit(
        client: Any, auth: Any, make_user: Any, rate_limits: Any) -> None:
    """Credential stuffing: one address, a new email each time. The per-IP limit (every
    attempt counts, right or wrong, web and API) stops it; another address is not held up."""
    rate_limits(RATE_LIMIT_SIGNIN="1000 per hour", RATE_LIMIT_SIGNIN_PER_IP="10 per hour")
    real = make_user()
    for i in range(9):
        assert token_attempt(client, f"victim{i}@example.com", "123456").status_code == 401
    browser = auth.client()
    page = browser.post("/signin", data={"email": "victim9@example.com", "password": "x"},
                        **from_ip("203.0.113.9"))
    assert page.status_code == 200  # the tenth attempt, through the form
    assert_refused(token_attempt(client, "victim10@example.com", "123456"))
    assert_refused(token_attempt(client, real.user.email, real.password))
    r = token_attempt(client, real.user.email, real.password, ip="192.0.2.77")
    assert r.status_code == 201


def test_an_ipv6_subscriber_cannot_rotate_addresses_within_its_64(
        client: Any, rate_limits: Any) -> None:
    """Each of 2^64 addresses of one /64 is the same client; the next /64 is another."""
    rate_limits(RATE_LIMIT_SIGNIN="1000 per hour", RATE_LIMIT_SIGNIN_PER_IP="3 per hour")
    codes = [token_attempt(client, f"v{i}@example.com", "x", ip=f"2001:db8:1:2::{i:x}").status_code
             for i in range(1, 5)]
    assert codes == [401, 401, 401, 429]
    assert token_attempt(client, "v@example.com", "x", ip="2001:db8:1:3::1").status_code == 401


# --- registration -----------------------------------------------------------------------------


def test_a_registration_flood_from_one_address_is_cut(client: Any, rate_limits: Any) -> None:
    rate_limits(RATE_LIMIT_SIGNUP="1000 per hour", RATE_LIMIT_SIGNUP_PER_IP="5 per hour")
    before = committed_count(User)
    answers = [client.post("/api/v1/users", json={
        "email": f"bot{i}-{uuid.uuid4().hex[:6]}@example.com", "password": "bot-password-1",
        "name": f"Bot {i}"}, **from_ip("203.0.113.50")) for i in range(30)]
    assert [r.status_code for r in answers[:5]] == [202] * 5
    for r in answers[5:]:
        assert_refused(r)
    assert committed_count(User) == before + 5
    page = client.post("/signup", data={"email": "form@example.com", "password": "pw-123456789",
                                        "name": "Form"}, **from_ip("203.0.113.50"))
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert committed_count(User) == before + 5


def test_probing_one_email_for_sign_up_is_limited_per_account(client: Any, make_user: Any,
                                                              rate_limits: Any) -> None:
    """"Is this email registered?" asked from many addresses: the per-account sign-up limit
    answers it a few times, then 429."""
    rate_limits(RATE_LIMIT_SIGNUP="3 per hour", RATE_LIMIT_SIGNUP_PER_IP="1000 per hour")
    person = make_user()
    answers = [client.post("/api/v1/users", json={
        "email": person.user.email, "password": "whatever-123", "name": "Probe"},
        **from_ip(f"198.51.100.{i}")) for i in range(10)]
    assert [r.status_code for r in answers[:3]] == [202] * 3
    for r in answers[3:]:
        assert_refused(r)


# --- posting ----------------------------------------------------------------------------------


def test_a_flood_of_needs_is_cut_at_the_limit(make_user: Any, auth: Any,
                                             rate_limits: Any) -> None:
    """300 needs with a 100 km radius, as fast as they go (all were 201 before the limit):
    the first 10 are posted, the rest are 429 and nothing beyond the 10 is in the database.
    The post-need form spends the same budget."""
    rate_limits(RATE_LIMIT_NEEDS="10 per hour;50 per day")
    customer = make_user()
    answers = [customer.post("/api/v1/needs", json=need_data(title=f"Flood {i}", radius_km=100))
               for i in range(300)]
    assert [r.status_code for r in answers[:10]] == [201] * 10
    for r in answers[10:]:
        assert_refused(r)
    assert len(committed_rows(Need, customer_id=customer.user.id)) == 10
    page = auth.sign_in(customer).post("/needs/new", data={"title": "One more"})
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert len(committed_rows(Need, customer_id=customer.user.id)) == 10
    assert make_user().post("/api/v1/needs", json=need_data()).status_code == 201


def test_offers_and_messages_are_limited_per_account(
        make_need: Any, make_provider: Any, make_user: Any, auth: Any, rate_limits: Any) -> None:
    rate_limits(RATE_LIMIT_OFFERS="2 per hour", RATE_LIMIT_MESSAGES="3 per minute")
    customer = make_user()
    pro = make_provider()
    needs = [make_need(customer) for _ in range(3)]
    r = pro.post(f"/api/v1/needs/{needs[0].id}/offers", json={"message": "Me"})
    assert r.status_code == 201, r.get_json()
    offer_id = r.get_json()["id"]
    assert pro.patch(f"/api/v1/offers/{offer_id}", json={"message": "Me, cheaper"}).status_code == 200
    assert_refused(pro.post(f"/api/v1/needs/{needs[1].id}/offers", json={"message": "Me"}))
    assert_refused(pro.patch(f"/api/v1/offers/{offer_id}", json={"message": "Me again"}))
    page = auth.sign_in(pro).post(f"/needs/{needs[2].id}/offers", data={"message": "Form"})
    assert page.status_code == 429
    assert make_provider().post(f"/api/v1/needs/{needs[1].id}/offers",
                                json={"message": "Other"}).status_code == 201

    for i in range(3):
        r = customer.post(f"/api/v1/offers/{offer_id}/messages", json={"body": f"hi {i}"})
        assert r.status_code == 201, r.get_json()
    assert_refused(customer.post(f"/api/v1/offers/{offer_id}/messages", json={"body": "spam"}))
    page = auth.sign_in(customer).post(f"/offers/{offer_id}/messages", data={"body": "spam"})
    assert page.status_code == 429
    assert len(committed_rows(Message, offer_id=offer_id)) == 3


# --- headers ----------------------------------------------------------------------------------


def test_limited_api_responses_carry_the_rate_limit_headers(make_user: Any,
                                                            rate_limits: Any) -> None:
    rate_limits(RATE_LIMIT_NEEDS="3 per hour;5 per day")
    customer = make_user()
    seen = []
    for _ in range(4):
        r = customer.post("/api/v1/needs", json=need_data())
        seen.append((r.status_code, r.headers.get("RateLimit-Limit"),
                     r.headers.get("RateLimit-Remaining"), r.headers.get("X-RateLimit-Remaining")))
        assert r.headers["RateLimit-Policy"] == "3;w=3600, 5;w=86400"
        assert 0 < int(r.headers["RateLimit-Reset"]) <= 3600
    assert seen == [(201, "3", "2", "2"), (201, "3", "1", "1"), (201, "3", "0", "0"),
                    (429, "3", "0", "0")]
    assert int(r.headers["Retry-After"]) == pytest.approx(int(r.headers["RateLimit-Reset"]), abs=1)
    unlimited = customer.get("/api/v1/me")
    assert "RateLimit-Limit" not in unlimited.headers


def test_the_openapi_document_shows_the_429_and_its_headers(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, method in (("/api/v1/tokens", "post"), ("/api/v1/users", "post"),
                         ("/api/v1/needs", "post"), ("/api/v1/offers/{offer_id}", "patch"),
                         ("/api/v1/offers/{offer_id}/messages", "post")):
        assert "429" in spec["paths"][path][method]["responses"], (path, method)
    refused = spec["components"]["responses"]["TOO_MANY_REQUESTS"]
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
            "RateLimit-Policy"} <= set(refused["headers"])


# --- behind a proxy ---------------------------------------------------------------------------


@pytest.fixture
def proxied(app: Flask) -> Iterator[Flask]:
    """The app as deployed behind one proxy (PROXY_HOPS=1)."""
    saved = app.wsgi_app, app.config["PROXY_HOPS"]
    app.config["PROXY_HOPS"] = 1
    trust_proxies(app)
    yield app
    app.wsgi_app, app.config["PROXY_HOPS"] = saved  # type: ignore[method-assign]


def test_behind_a_proxy_each_client_has_its_own_address_budget(
        proxied: Flask, rate_limits: Any) -> None:
    rate_limits(RATE_LIMIT_SIGNIN="1000 per hour", RATE_LIMIT_SIGNIN_PER_IP="3 per hour")
    client = proxied.test_client()

    def attempt(client_ip: str) -> int:
        return client.post("/api/v1/tokens", json={"email": "a@example.com", "password": "x"},
                           headers={"X-Forwarded-For": client_ip},
                           environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code

    assert [attempt("198.51.100.1") for _ in range(4)] == [401, 401, 401, 429]
    assert attempt("198.51.100.2") == 401  # another client behind the same proxy


def test_without_proxy_hops_a_forged_forwarded_for_changes_nothing(
        client: Any, rate_limits: Any) -> None:
    rate_limits(RATE_LIMIT_SIGNIN="1000 per hour", RATE_LIMIT_SIGNIN_PER_IP="3 per hour")
    codes = [client.post("/api/v1/tokens", json={"email": "a@example.com", "password": "x"},
                         headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
             for i in range(4)]
    assert codes == [401, 401, 401, 429]


# --- several processes, one count (Redis) -----------------------------------------------------


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[list[str]]:
    """Two server processes on one database and one Redis, as behind a load balancer."""
    from live import server

    url, app = migrated_sqlite(tmp_path_factory, "limits")
    env = {"RATELIMIT_STORAGE_URI": redis_url,
           "RATELIMIT_KEY_PREFIX": f"test-limits-{uuid.uuid4().hex[:8]}",
           "RATE_LIMIT_SIGNIN": "3 per minute", "RATE_LIMIT_REPLAYS": "2 per minute"}
    with server(url, **env) as first, server(url, **env) as second:
        yield [first, second]
    with app.app_context():
        db.engine.dispose()


def test_two_processes_count_together_through_redis(two_servers: list[str]) -> None:
    """Three wrong passwords spread over two processes spend one budget of three: the fourth
    is refused by either (with memory:// each process would allow three of its own). The
    right password spends nothing there either."""
    first, second = two_servers
    email = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    r = requests.post(f"{first}/api/v1/users", timeout=10,
                      json={"email": email, "password": "right-password-1", "name": "Shared"})
    assert r.status_code == 202, r.text

    def attempt(base: str, password: str = "wrong") -> requests.Response:
        return requests.post(f"{base}/api/v1/tokens", timeout=10,
                             json={"email": email, "password": password})

    # Right passwords give their count back in Redis too: they leave the three for failures.
    assert [attempt(b, "right-password-1").status_code for b in (first, second)] == [201, 201]
    assert [attempt(b).status_code for b in (first, second, first)] == [401, 401, 401]
    refused = attempt(second, "right-password-1")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert re.fullmatch(r"\d+", refused.headers["Retry-After"])
    assert attempt(first, "right-password-1").status_code == 429


def test_replay_requests_are_limited_per_connection(two_servers: list[str]) -> None:
    """Two replays a minute per connection: the third is answered 429 in the error shape and
    nothing is sent for it; a new connection has its own budget."""
    from test_replay import Recorder, provider

    base = two_servers[0]
    pro = provider(base)
    client = Recorder(base, {"token": pro.token, "last_id": 2**62})
    try:
        assert client.page() == ([], "replay.done", {"last_id": 2**62})
        for _ in range(2):
            assert client.client.call("replay", {"after": 2**62}, timeout=10) is None
            assert client.page() == ([], "replay.done", {"last_id": 2**62})
        answer = client.client.call("replay", {"after": 2**62}, timeout=10)
        assert answer["error"]["status"] == 429, answer
        assert answer["error"]["code"] == "too_many_requests"
        assert client.stream.empty()
    finally:
        client.close()
    again = Recorder(base, {"token": pro.token, "last_id": 2**62})
    try:
        again.page()
        assert again.client.call("replay", {"after": 2**62}, timeout=10) is None
    finally:
        again.close()


def test_with_limits_switched_off_a_right_password_still_signs_in(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """RATELIMIT_ENABLED=0 (bench, fuzzing): nothing is counted, so nothing is given back."""
    from conftest import make_test_app, migrated_sqlite

    url, _ = migrated_sqlite(tmp_path_factory, "limits-off")
    client = make_test_app(url, RATELIMIT_ENABLED=False).test_client()
    assert client.post("/api/v1/users", json={"email": "off@example.com", "name": "Off",
                                              "password": "long enough pw"}).status_code < 300
    r = client.post("/api/v1/tokens", json={"email": "off@example.com",
                                            "password": "long enough pw"})
    assert r.status_code == 201, r.get_data(as_text=True)


def test_password_reset_requests_are_limited_per_account_and_page(client: Any, make_user: Any,
                                                                   rate_limits: Any) -> None:
    """Mail-bombing one address with reset links, or guessing reset tokens: the API and the
    form share one budget per address asked about; a refusal mails nothing."""
    rate_limits(RATE_LIMIT_PASSWORD_RESET="3 per hour",
                RATE_LIMIT_PASSWORD_RESET_PER_IP="1000 per hour")
    person = make_user()
    answers = [client.post("/api/v1/password-reset", json={"email": person.user.email},
                           **from_ip(f"198.51.100.{i}")) for i in range(3)]
    assert [r.status_code for r in answers] == [202] * 3
    assert_refused(client.post("/api/v1/password-reset", json={"email": person.user.email},
                               **from_ip("198.51.100.99")))
    page = client.post("/password-reset", data={"email": person.user.email})
    assert page.status_code == 429 and page.mimetype == "text/html"


def test_reports_are_limited_per_account(make_user: Any, make_need: Any, make_provider: Any,
                                         rate_limits: Any) -> None:
    """Flooding the moderators' queue: reports past the budget are 429 and file nothing."""
    from marketplace.moderation.models import Report

    rate_limits(RATE_LIMIT_REPORTS="2 per hour")
    reporter = make_user()
    targets = [make_provider().provider.handle for _ in range(3)]
    answers = [reporter.post("/api/v1/reports", json={"target_type": "profile", "handle": h,
                                                      "reason": "spam"}) for h in targets]
    assert [r.status_code for r in answers[:2]] == [201, 201]
    assert_refused(answers[2])
    assert committed_count(Report) == 2
