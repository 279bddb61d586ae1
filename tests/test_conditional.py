"""The API's conventions (docs/api.md, "Conventions"): conditional requests (ETag,
If-None-Match -> 304, If-Match -> 412), the request id, the 401 challenge and the Link header
of every page."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from conftest import error_of

from marketplace.moderation import services as moderation

API = "/api/v1"


# --- ETags and If-None-Match ------------------------------------------------------------------


@pytest.mark.parametrize("what", ["need", "offer", "profile"])
def test_a_read_has_an_etag_and_an_unchanged_one_is_a_304(make_user, make_need, make_offer,
                                                          make_provider, client, what) -> None:
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    offer = make_offer(need, pro)
    reader, url = {"need": (customer.get, f"{API}/needs/{need.id}"),
                   "offer": (customer.get, f"{API}/offers/{offer.id}"),
                   "profile": (client.get, f"{API}/providers/{pro.provider.handle}")}[what]
    first = reader(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = reader(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b"" and again.headers["ETag"] == etag
    assert reader(url, headers={"If-None-Match": '"something-else"'}).status_code == 200
    assert reader(url, headers={"If-None-Match": f'"x", {etag}'}).status_code == 304


def test_an_offer_etag_changes_when_the_offer_does(make_user, make_need, make_offer,
                                                   make_provider) -> None:
    customer, pro = make_user(), make_provider()
    offer = make_offer(make_need(customer), pro)
    url = f"{API}/offers/{offer.id}"
    before = customer.get(url).headers["ETag"]
    assert before == '"1-pending"'
    revised = pro.patch(url, json={"message": "Now with dessert"})
    assert revised.status_code == 200 and revised.headers["ETag"] == '"2-pending"'
    r = customer.get(url, headers={"If-None-Match": before})
    assert r.status_code == 200 and r.get_json()["message"] == "Now with dessert"


def test_a_need_etag_changes_when_the_need_does(make_user, make_need) -> None:
    customer = make_user()
    need = make_need(customer)
    url = f"{API}/needs/{need.id}"
    before = customer.get(url).headers["ETag"]
    assert customer.post(f"{url}/cancel", json={"reason": "Not needed"}).status_code == 200
    r = customer.get(url, headers={"If-None-Match": before})
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert r.headers["ETag"] != before


def test_a_stranger_gets_a_404_not_a_304(make_user, make_need) -> None:
    customer, stranger = make_user(), make_user()
    need = make_need(customer, category="plumbing")
    etag = customer.get(f"{API}/needs/{need.id}").headers["ETag"]
    r = stranger.get(f"{API}/needs/{need.id}", headers={"If-None-Match": etag})
    assert r.status_code == 404


# --- If-Match on offer updates ----------------------------------------------------------------


def test_revising_with_a_stale_if_match_is_a_412_and_changes_nothing(make_user, make_need,
                                                                    make_offer,
                                                                    make_provider) -> None:
    customer, pro = make_user(), make_provider()
    offer = make_offer(make_need(customer), pro)
    url = f"{API}/offers/{offer.id}"
    etag = pro.get(url).headers["ETag"]
    assert pro.patch(url, json={"message": "First"}, headers={"If-Match": etag}).status_code == 200
    stale = pro.patch(url, json={"message": "Second"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    error = error_of(stale)
    assert error["code"] == "precondition_failed" and "If-Match" in error["fields"]
    assert pro.get(url).get_json()["message"] == "First"
    assert pro.patch(url, json={"message": "Any"}, headers={"If-Match": "*"}).status_code == 200


def test_accepting_with_if_match_accepts_the_version_read(make_user, make_need, make_offer,
                                                          make_provider) -> None:
    customer, pro = make_user(), make_provider()
    offer = make_offer(make_need(customer), pro)
    url = f"{API}/offers/{offer.id}"
    read = customer.get(url).headers["ETag"]
    assert pro.patch(url, json={"message": "Pricier now"}).status_code == 200
    stale = customer.post(f"{url}/accept", headers={"If-Match": read})
    assert stale.status_code == 412
    assert customer.get(url).get_json()["status"] == "pending"
    current = customer.get(url).headers["ETag"]
    accepted = customer.post(f"{url}/accept", headers={"If-Match": current})
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["status"] == "accepted"
    assert accepted.headers["ETag"] == '"2-accepted"'


# --- X-Request-Id ----------------------------------------------------------------------------


def test_every_response_has_a_request_id_and_a_sane_one_is_echoed(client, make_user) -> None:
    person = make_user()
    ids = set()
    for response in (client.get(f"{API}/categories"), person.get(f"{API}/me"),
                     client.get(f"{API}/me"), client.get(f"{API}/no-such-thing"),
                     client.get("/")):
        assert response.headers["X-Request-Id"], response.status_code
        ids.add(response.headers["X-Request-Id"])
    assert len(ids) == 5  # a new one each time
    mine = "req-2026.12.02:abc_DEF-1"
    assert client.get(f"{API}/categories",
                      headers={"X-Request-Id": mine}).headers["X-Request-Id"] == mine
    for insane in ("", "has space", "a" * 129, "new\\nline", "<script>"):
        echoed = client.get(f"{API}/categories", headers={"X-Request-Id": insane})
        assert echoed.headers["X-Request-Id"] not in (insane, ""), insane


def test_log_lines_name_the_request_id(app, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="marketplace"), \
            app.test_request_context(f"{API}/me", headers={"X-Request-Id": "probe-42"}):
        app.preprocess_request()  # the before-request hooks: the id is taken here
        probe = logging.getLogger("marketplace.probe")
        probe.disabled = False  # alembic's fileConfig disables loggers that exist when it runs
        probe.warning("probing")
    records = [r for r in caplog.records if r.getMessage() == "probing"]
    assert [r.request_id for r in records] == ["probe-42"]
    handler = next(h for h in logging.getLogger("marketplace").handlers
                   if "request_id" in getattr(h.formatter, "_fmt", ""))
    assert "[probe-42]" in handler.format(records[0])


# --- WWW-Authenticate ------------------------------------------------------------------------


def test_a_401_names_the_bearer_scheme(client) -> None:
    none = client.get(f"{API}/me")
    assert none.status_code == 401
    assert none.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    bad = client.get(f"{API}/me", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


# --- Link headers ----------------------------------------------------------------------------


def test_every_page_links_to_the_next_with_the_body_cursor(make_user, make_need, make_offer,
                                                           make_provider) -> None:
    customer = make_user()
    for _ in range(3):
        need = make_need(customer)
    for _ in range(3):
        make_offer(need)
    for url in (f"{API}/needs?status=open&limit=2", f"{API}/needs/{need.id}/offers?limit=2",
                f"{API}/categories?limit=2"):
        seen: list[Any] = []
        while url:
            r = customer.get(url)
            assert r.status_code == 200, r.get_json()
            body = r.get_json()
            seen += body["items"]
            if body["next_cursor"] is None:
                assert "Link" not in r.headers
                url = None
                continue
            link = r.headers["Link"]
            assert link.endswith('>; rel="next"') and f"cursor={body['next_cursor']}" in link
            assert "limit=2" in link
            url = link[1:link.index(">")]
        assert len(seen) >= 3 and len({str(i) for i in seen}) == len(seen)


@pytest.mark.parametrize("path", ["/tokens", "/categories", "/me/blocks", "/me/reports",
                                  "/admin/reports", "/admin/log"])
def test_lists_that_were_arrays_are_pages(make_user, path) -> None:
    person = make_user()
    moderation.set_admin(person.user.email, True)
    r = person.get(f"{API}{path}")
    assert r.status_code == 200
    assert set(r.get_json()) == {"items", "next_cursor"}
