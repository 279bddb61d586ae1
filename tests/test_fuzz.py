"""schemathesis against the live OpenAPI document: a real server process, an authenticated
client (a customer who is also a provider, with needs, offers and a thread), every operation
fuzzed with inputs generated from the document itself. A run fails on any 5xx, on a response
whose body does not match its documented schema, on an undocumented status code, and on a
content type the document does not declare.

Operations that end the fuzzer's own access (revoking a token, erasing the account, signing
out of sessions) run in their own test with an account of their own, so the fuzzer does not
cut the branch it sits on. Limits are lifted for the run (they would answer most of it 429,
which is what they are for, but not what this tests). The run's size: ``FUZZ_EXAMPLES`` per
operation and generation mode (default 20): schemathesis' positive mode (valid inputs) and
negative mode (inputs that break the document's schema, which must get a documented 4xx)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis  # noqa: E402  (a dev dependency: CI always has it)
from conftest import AUSTIN, migrated_sqlite
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from live import Api, server
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# Valid inputs (they must be answered as documented) and invalid ones (a documented 4xx).
MODES = [GenerationMode(m) for m in os.environ.get("FUZZ_MODES", "positive,negative").split(",")]
#: Input the document cannot judge, checked against stored data or the world: a schema-valid
#: request may be refused with a 422 naming these fields, and only these (operation -> fields).
DATA_CHECKED = {
    "POST /api/v1/needs": {"location", "place", "audience"},  # geocoder names; favourites exist
    "GET /api/v1/geocode": {"q"},  # a place the gazetteer knows
    # a place the gazetteer knows; lat and lon go together, or place_query instead (a rule
    # between query parameters that OpenAPI 3.0 cannot state: the descriptions do)
    "GET /api/v1/needs/suggestions": {"lat", "lon", "place_query"},
    "POST /api/v1/verification": {"token"},  # the secret in a mailed link
    "POST /api/v1/email-change/confirm": {"token"},
    "POST /api/v1/password-reset/confirm": {"token"},
    "POST /api/v1/me/password": {"password"},  # not the current password again
    "PUT /api/v1/me/providers/{handle}": {"favourite"},  # a blocked provider
    "POST /api/v1/admin/actions": {"target_id", "report_id"},  # yourself; a report of another
    "POST /api/v1/needs/{need_id}/offers": {"price", "available_at"},  # the need's currency
    "PATCH /api/v1/offers/{offer_id}": {"price", "available_at"},
    # an erased provider's handle; a tag's letters are Unicode letters after NFKC, which an
    # OpenAPI (ECMA-262) pattern cannot say: the field's description does
    "PUT /api/v1/me/provider": {"handle", "tags"},
    "POST /api/v1/reports": {"target_type"},  # your own content
    # an upload's bytes must be a real JPEG, PNG or WebP: a binary string cannot say so
    "PUT /api/v1/me/avatar": {"avatar"},
    "POST /api/v1/needs/{need_id}/photos": {"photo"},
    "PUT /api/v1/me/alerts": {"categories"},  # which slugs exist is data: GET /categories
    # a host name must resolve to a public address (SSRF); an address is not a pattern
    "POST /api/v1/webhooks": {"url"},
    "PATCH /api/v1/webhooks/{webhook_id}": {"url"},
}


def accepts_schema_valid_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, except a 422 naming only ``DATA_CHECKED``
    fields of the operation, and a 412: a generated ``If-Match`` that is not the current
    version is refused for the state it names, as a 409 is."""
    if response.status_code == 412:
        return None
    allowed = DATA_CHECKED.get(f"{case.operation.method.upper()} {case.operation.path}", set())
    if response.status_code == 422 and allowed:
        try:
            named = set(response.json()["error"].get("fields", {}))
        except (ValueError, KeyError, TypeError):
            named = set()
        if named and named <= allowed:
            return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance, accepts_schema_valid_data]
# What ends the caller's own access: fuzzed apart, with an account each.
SELF_ENDING = {("DELETE", "/api/v1/tokens/{token_id}"), ("DELETE", "/api/v1/me")}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, _app = migrated_sqlite(tmp_path_factory, "fuzz")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600", RATELIMIT_ENABLED="0",
                LIVE_CONNECTIONS_PER_USER="1000") as base:
        yield base


def _world(base: str) -> Api:
    """A person with something behind every kind of id: a provider profile, a need of their
    own with an offer from another provider and a message, and an offer on someone's need."""
    me = Api(base, f"fuzz-{uuid.uuid4().hex[:8]}@example.com", name="Fuzz Person")
    other = Api(base, f"other-{uuid.uuid4().hex[:8]}@example.com", name="Other Person")
    for who in (me, other):
        r = who.call("PUT", "/me/provider", json={
            "handle": "f" + uuid.uuid4().hex[:10], "display_name": "Fuzz Pro",
            "categories": ["catering"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
            "radius_km": 30, "active": True})
        assert r.status_code == 200, r.text
    need = {"title": "Fuzz need", "category": "catering",
            "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]}, "radius_km": 30,
            "budget": {"amount": 10000, "currency": "USD"}}
    mine = me.call("POST", "/needs", json=need).json()
    theirs = other.call("POST", "/needs", json=need).json()
    offer = other.call("POST", f"/needs/{mine['id']}/offers",
                       json={"price": {"amount": 9000, "currency": "USD"}}).json()
    me.call("POST", f"/offers/{offer['id']}/messages", json={"body": "Hello"})
    me.call("POST", f"/needs/{theirs['id']}/offers",
            json={"price": {"amount": 9500, "currency": "USD"}})
    return me


@pytest.fixture(scope="module")
def api_schema(fuzz_server: str) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_server}/api/v1/openapi.json")


@pytest.fixture(scope="module")
def person(fuzz_server: str) -> Api:
    return _world(fuzz_server)


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck), derandomize=True)


def _cases(operation: Any, mode: Any, label: str, base: str, token_for: Any,
           counts: dict[str, int], failures: list[str]) -> Any:
    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        counts["cases"] += 1
        headers = {"Authorization": f"Bearer {token_for()}"}
        if "Idempotency-Key" in (case.headers or {}):  # a new key: a reused one is another test
            headers["Idempotency-Key"] = uuid.uuid4().hex
        try:
            case.call_and_validate(base_url=base, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:600]}")
            raise

    return run


def fuzz(api_schema: Any, base: str, token_for: Any, only: Any) -> None:
    """Every operation ``only`` admits, ``EXAMPLES`` generated cases each; every failure is
    collected (operation, check, case) and the run fails at the end with all of them."""
    failures: list[str] = []
    timings: dict[str, float] = {}
    counts = {"operations": 0, "cases": 0}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if not only((operation.method.upper(), operation.path)):
            continue
        counts["operations"] += 1

        for mode in MODES:
            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            started = time.monotonic()
            try:
                _cases(operation, mode, label, base, token_for, counts, failures)()
            except Unsatisfiable:  # no input breaks this operation's schema (no parameters)
                continue
            except (Exception, BaseExceptionGroup) as exc:  # recorded; hypothesis re-raises
                if not any(f.startswith(label) for f in failures):
                    failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:600]}")
            finally:
                timings[label] = time.monotonic() - started
    print(f"fuzzed {counts['operations']} operations, {counts['cases']} cases")
    unique = sorted(set(failures))
    if os.environ.get("FUZZ_REPORT"):
        with open(os.environ["FUZZ_REPORT"], "a") as report:
            report.write(f"{counts}\n" + "".join(
                f"{seconds:6.1f}s {label}\n"
                for label, seconds in sorted(timings.items(), key=lambda t: -t[1])))
            report.write("\n\n".join(unique))
    assert not unique, f"{len(unique)} failures:\n" + "\n\n".join(unique[:20])


def test_every_operation_answers_as_documented(api_schema: Any, fuzz_server: str,
                                               person: Api) -> None:
    fuzz(api_schema, fuzz_server, lambda: person.token, lambda key: key not in SELF_ENDING)


def test_operations_that_end_access_answer_as_documented(api_schema: Any,
                                                         fuzz_server: str) -> None:
    def fresh() -> str:
        return Api(fuzz_server, f"ender-{uuid.uuid4().hex[:8]}@example.com", name="Ender").token

    fuzz(api_schema, fuzz_server, fresh, lambda key: key in SELF_ENDING)
