"""My providers: the customer's private record of the providers they dealt with, and needs
sent to favourites only. Written the way a nosy provider would try to read it."""

from __future__ import annotations

import json
import re
from typing import Any

from conftest import AUSTIN, error_of
from pages import csrf_token, dom, field_error, field_errors, links
from sqlalchemy import select

from marketplace import lifecycle
from marketplace.blocks.models import Contact
from marketplace.extensions import db
from marketplace.needs.models import NeedRecipient
from marketplace.notifications.models import Notification

SECRET = "Overcharged me; late twice — zebra-quokka-1729"
MARK = "zebra-quokka-1729"  # the part that reads the same in JSON (escaped) and HTML
# ~200 km north of Austin (Waco is ~150 km; this is farther).
FAR = (32.05, -97.7431)


def told(person: Any) -> list[dict[str, Any]]:
    rows = db.session.scalars(select(Notification).where(
        Notification.user_id == person.user.id, Notification.type == "need.matched"))
    return [n.data if isinstance(n.data, dict) else json.loads(n.data) for n in rows]


def handles(person: Any, url: str = "/api/v1/me/providers") -> list[str]:
    r = person.get(url)
    assert r.status_code == 200, r.get_json()
    return [item["handle"] for item in r.get_json()["items"]]


def test_the_list_is_exactly_the_providers_who_offered(make_user: Any, make_provider: Any,
                                                       make_need: Any, make_offer: Any,
                                                       make_job: Any) -> None:
    alice, bob = make_user(), make_user()
    hired, offered, withdrew, strangers_pro, bystander = (make_provider() for _ in range(5))
    make_job(alice, hired)
    need = make_need(alice, max_offers=5)
    make_offer(need, offered)
    make_offer(need, hired)
    gone = make_offer(need, withdrew)
    withdrew.post(f"/api/v1/offers/{gone.id}/withdraw")
    make_offer(make_need(bob), strangers_pro)  # dealt with Bob, not Alice
    assert bystander.provider is not None  # matched Alice's needs, never offered
    assert handles(alice) == [withdrew.provider.handle, hired.provider.handle,
                              offered.provider.handle]
    items = {i["handle"]: i for i in alice.get("/api/v1/me/providers").get_json()["items"]}
    assert (items[hired.provider.handle]["offers"], items[hired.provider.handle]["hires"]) == (2, 1)
    assert (items[offered.provider.handle]["offers"], items[offered.provider.handle]["hires"]) \
        == (1, 0)
    assert items[hired.provider.handle]["reputation"]["completed_jobs"] == 1
    assert items[hired.provider.handle]["display_name"] == hired.provider.display_name
    assert handles(bob) == [strangers_pro.provider.handle]
    assert handles(make_user()) == []


def test_pages_follow_the_cursor(make_user: Any, make_provider: Any, make_need: Any,
                                 make_offer: Any) -> None:
    alice = make_user()
    need = make_need(alice, max_offers=10)
    pros = [make_provider() for _ in range(5)]
    for pro in pros:
        make_offer(need, pro)
    seen, cursor = [], None
    while True:
        url = "/api/v1/me/providers?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = alice.get(url).get_json()
        seen += [i["handle"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [p.provider.handle for p in reversed(pros)]


def test_a_record_only_for_a_provider_you_dealt_with(make_user: Any, make_provider: Any,
                                                     make_need: Any, make_offer: Any) -> None:
    alice = make_user()
    never, dealt = make_provider(), make_provider()
    make_offer(make_need(alice), dealt)
    for method in ("get", "put"):
        for handle in (never.provider.handle, "nobody-here", "NOT A HANDLE"):
            r = getattr(alice, method)(f"/api/v1/me/providers/{handle}", json={"note": "x"})
            assert error_of(r)["status"] == 404
    assert db.session.scalars(select(Contact)).all() == []
    r = alice.put(f"/api/v1/me/providers/{dealt.provider.handle}",
                  json={"note": "  Great food  ", "would_hire_again": True})
    assert r.status_code == 200
    body = r.get_json()
    assert (body["note"], body["would_hire_again"], body["favourite"], body["blocked"]) == \
        ("Great food", True, False, False)
    # Leaving fields out keeps them; null clears "would hire again".
    r = alice.put(f"/api/v1/me/providers/{dealt.provider.handle}",
                  json={"favourite": True, "would_hire_again": None})
    assert (r.get_json()["note"], r.get_json()["would_hire_again"], r.get_json()["favourite"]) \
        == ("Great food", None, True)
    assert alice.get(f"/api/v1/me/providers/{dealt.provider.handle}").get_json() == r.get_json()
    # Another customer cannot reach Alice's record through the same provider.
    assert error_of(make_user().get(f"/api/v1/me/providers/{dealt.provider.handle}"))["status"] \
        == 404


def test_put_refuses_bad_input_and_changes_nothing(make_user: Any, make_provider: Any,
                                                    make_need: Any, make_offer: Any) -> None:
    alice = make_user()
    pro = make_provider()
    make_offer(make_need(alice), pro)
    url = f"/api/v1/me/providers/{pro.provider.handle}"
    alice.put(url, json={"note": "kept"})
    for body, field in (({"note": "x" * 2001}, "note"), ({"note": "a\x00b"}, "note"),
                        ({"note": 5}, "note"), ({"would_hire_again": "maybe"}, "would_hire_again"),
                        ({"favourite": None}, "favourite"), ({"favourite": "yes!"}, "favourite"),
                        ({"blocked": True}, "blocked")):
        r = alice.put(url, json=body)
        assert field in error_of(r)["fields"], (body, r.get_json())
        assert error_of(r)["status"] == 422
    assert alice.get(url).get_json()["note"] == "kept"
    assert alice.put(url, json={"note": "x" * 2000}).status_code == 200


def test_the_note_never_reaches_the_provider(make_user: Any, make_provider: Any, make_need: Any,
                                             make_offer: Any, auth: Any, app: Any) -> None:
    alice = make_user()
    pro = make_provider()
    need = make_need(alice)
    offer = make_offer(need, pro)
    alice.put(f"/api/v1/me/providers/{pro.provider.handle}",
              json={"note": SECRET, "would_hire_again": False, "favourite": True})
    lifecycle.accept(alice.user, offer.id)
    lifecycle.complete(alice.user, need.id)
    lifecycle.rate(alice.user, need.id, {"stars": 4, "comment": "ok", "scores": None})
    make_need(alice, audience="favourites")
    browser = auth.sign_in(pro)
    h = pro.provider.handle
    values = {"need_id": need.id, "offer_id": offer.id, "handle": h,
              "token": need.share_token, "filename": "app.css", "event": "need.matched"}
    rules = [r.rule for r in app.url_map.iter_rules() if "GET" in r.methods]
    assert "/api/v1/me/providers/<string:handle>" in rules
    for rule in rules:
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values.get(m.group(1), 1)), rule)
        for response in (pro.get(url), browser.get(url)):
            text = response.get_data(as_text=True)
            response.close()
            assert MARK not in text, url
            if not rule.startswith(("/api/v1/openapi", "/api/v1/docs")):  # the field's docs
                assert "would_hire_again" not in text, url
    for n in db.session.scalars(select(Notification).where(Notification.user_id == pro.user.id)):
        assert MARK not in json.dumps(n.data)
    # The customer does see it.
    assert alice.get(f"/api/v1/me/providers/{h}").get_json()["note"] == SECRET


def test_favourites_only_need_reaches_a_far_favourite_and_no_one_else(
        make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> None:
    alice = make_user()
    fav, other_fav = make_provider(), make_provider()
    nearby = make_provider()  # serves catering at Austin: matches any nearby need of Alice
    for pro in (fav, other_fav, nearby):
        make_offer(make_need(alice), pro)
    # The favourites have moved 200 km away since; one serves another category now.
    make_provider(fav, base=FAR, radius_km=5, categories=("plumbing",))
    make_provider(other_fav, base=FAR, radius_km=5)
    for pro in (fav, other_fav):
        assert alice.put(f"/api/v1/me/providers/{pro.provider.handle}",
                         json={"favourite": True}).status_code == 200
    before = len(told(nearby))
    r = alice.post("/api/v1/needs", json={
        "title": "Fix the sink again", "category": "catering",
        "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]}, "radius_km": 5,
        "budget": {"amount": 9000, "currency": "USD"}, "audience": "favourites"})
    assert r.status_code == 201, r.get_json()
    need_id = r.get_json()["id"]
    assert r.get_json()["audience"] == "favourites"
    assert {row.provider_id for row in db.session.scalars(select(NeedRecipient))} == \
        {fav.provider.id, other_fav.provider.id}
    # The favourite 200 km away, serving another category, sees it, is told, can offer.
    seen = fav.get(f"/api/v1/needs/{need_id}")
    assert seen.status_code == 200
    assert (seen.get_json()["direct"], seen.get_json()["audience"]) == (True, None)
    assert need_id in [n["id"] for n in fav.get("/api/v1/feed").get_json()["items"]]
    note = [n for n in told(fav) if n["need"]["id"] == need_id]
    assert len(note) == 1 and note[0]["need"]["direct"] is True
    assert fav.post(f"/api/v1/needs/{need_id}/offers", json={}).status_code == 201
    # Neither the payloads nor the need say who else it went to.
    for text in (fav.get(f"/api/v1/needs/{need_id}").get_data(as_text=True),
                 json.dumps(note), fav.get("/api/v1/feed").get_data(as_text=True)):
        assert other_fav.provider.handle not in text
        assert other_fav.provider.display_name not in text
    # The nearby non-favourite is neither told nor able to see or offer.
    assert len(told(nearby)) == before
    assert error_of(nearby.get(f"/api/v1/needs/{need_id}"))["status"] == 404
    assert error_of(nearby.post(f"/api/v1/needs/{need_id}/offers", json={}))["status"] == 404
    assert need_id not in [n["id"] for n in nearby.get("/api/v1/feed").get_json()["items"]]
    stranger = make_provider()
    assert error_of(stranger.get(f"/api/v1/needs/{need_id}"))["status"] == 404


def test_a_favourite_who_is_blocked_is_cut_off(make_user: Any, make_provider: Any,
                                               make_need: Any, make_offer: Any) -> None:
    alice = make_user()
    fav = make_provider()
    make_offer(make_need(alice), fav)
    make_provider(fav, base=FAR)
    alice.put(f"/api/v1/me/providers/{fav.provider.handle}", json={"favourite": True})
    need = make_need(alice, audience="favourites")
    assert fav.get(f"/api/v1/needs/{need.id}").status_code == 200
    assert alice.put(f"/api/v1/me/blocks/{fav.provider.handle}").status_code == 200
    assert error_of(fav.get(f"/api/v1/needs/{need.id}"))["status"] == 404
    assert fav.get("/api/v1/feed").get_json()["items"] == []
    record = alice.get(f"/api/v1/me/providers/{fav.provider.handle}").get_json()
    assert (record["blocked"], record["favourite"]) == (True, False)
    r = alice.put(f"/api/v1/me/providers/{fav.provider.handle}", json={"favourite": True})
    assert "favourite" in error_of(r)["fields"]
    # With no favourite left, sending to favourites is refused on the field.
    r = alice.post("/api/v1/needs", json={
        "title": "Again", "category": "catering", "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 5, "budget": {"amount": 9000, "currency": "USD"}, "audience": "favourites"})
    assert "audience" in error_of(r)["fields"]
    # Unblocking does not make them a favourite again, nor un-cut the old need.
    alice.delete(f"/api/v1/me/blocks/{fav.provider.handle}")
    assert alice.get(f"/api/v1/me/providers/{fav.provider.handle}").get_json()["favourite"] is False


def test_nearby_needs_say_they_were_not_sent_directly(make_user: Any, make_provider: Any,
                                                      make_need: Any) -> None:
    pro = make_provider()
    need = make_need(make_user())
    assert pro.get(f"/api/v1/needs/{need.id}").get_json()["direct"] is False
    assert [n["need"]["direct"] for n in told(pro)] == [False]


# --- the web page ------------------------------------------------------------------------------


def _post(app: Any, browser: Any, url: str, form: dict[str, str]) -> Any:
    if app.config["WTF_CSRF_ENABLED"]:
        form = {**form, "csrf_token": csrf_token(browser.get("/me/providers"))}
    return browser.post(url, data=form)


def test_the_page_lists_saves_and_blocks(app: Any, auth: Any, make_user: Any,
                                         make_provider: Any, make_need: Any,
                                         make_offer: Any) -> None:
    alice = make_user()
    pro, other = make_provider(), make_provider()
    make_offer(make_need(alice), pro)
    browser = auth.sign_in(alice)
    home = browser.get("/")
    assert "/me/providers" in links(home)
    page = browser.get("/me/providers")
    assert page.status_code == 200
    names = [n.text() for n in dom(page).find_all("h2")]
    assert len(names) == 1 and pro.provider.display_name in names[0]
    assert other.provider.display_name not in page.get_data(as_text=True)
    h = pro.provider.handle
    r = _post(app, browser, f"/me/providers/{h}",
              {"note": "  Lovely paella  ", "would_hire_again": "yes", "favourite": "1"})
    assert r.status_code == 302
    record = alice.get(f"/api/v1/me/providers/{h}").get_json()
    assert (record["note"], record["would_hire_again"], record["favourite"]) == \
        ("Lovely paella", True, True)
    page = browser.get("/me/providers")
    assert dom(page).by_id(f"f-note-{h}").text() == "Lovely paella"
    # A bad note: the page again, the message next to the field, nothing changed.
    r = _post(app, browser, f"/me/providers/{h}", {"note": "x" * 2001, "would_hire_again": "no"})
    assert r.status_code == 200
    assert field_error(r, "note") == "Keep your note to 2000 characters or fewer."
    r = _post(app, browser, f"/me/providers/{h}", {"note": "ok", "would_hire_again": "maybe"})
    assert field_error(r, "would_hire_again")
    assert alice.get(f"/api/v1/me/providers/{h}").get_json()["note"] == "Lovely paella"
    # A provider she never dealt with has no record to write.
    assert _post(app, browser, f"/me/providers/{other.provider.handle}",
                 {"note": "x"}).status_code == 404
    assert _post(app, browser, f"/me/providers/{other.provider.handle}/block",
                 {}).status_code == 404
    # Block, then unblock, from the page.
    assert _post(app, browser, f"/me/providers/{h}/block", {}).status_code == 302
    record = alice.get(f"/api/v1/me/providers/{h}").get_json()
    assert (record["blocked"], record["favourite"]) == (True, False)
    assert _post(app, browser, f"/me/providers/{h}/unblock", {}).status_code == 302
    assert alice.get(f"/api/v1/me/providers/{h}").get_json()["blocked"] is False


def test_posting_to_favourites_from_the_form(app: Any, auth: Any, make_user: Any,
                                             make_provider: Any, make_need: Any,
                                             make_offer: Any) -> None:
    alice = make_user()
    fav, nearby = make_provider(), make_provider()
    make_offer(make_need(alice), fav)
    browser = auth.sign_in(alice)
    assert dom(browser.get("/needs/new")).by_id("f-audience") is None  # no favourites yet
    alice.put(f"/api/v1/me/providers/{fav.provider.handle}", json={"favourite": True})
    make_provider(fav, base=FAR)
    assert dom(browser.get("/needs/new")).by_id("f-audience") is not None
    form = {"title": "Paella for 12", "category": "catering", "budget": "350",
            "lat": str(AUSTIN[0]), "lon": str(AUSTIN[1]), "radius_km": "20",
            "expires_in": "48", "audience": "favourites"}
    if app.config["WTF_CSRF_ENABLED"]:
        form["csrf_token"] = csrf_token(browser.get("/needs/new"))
    before = len(told(nearby))
    r = browser.post("/needs/new", data=form)
    assert r.status_code == 302, field_errors(r)
    need_id = int(r.headers["Location"].rsplit("/", 1)[1])
    assert fav.get(f"/api/v1/needs/{need_id}").status_code == 200
    assert nearby.get(f"/api/v1/needs/{need_id}").status_code == 404
    assert len(told(nearby)) == before


def test_the_feed_pages_direct_and_nearby_needs_as_one_list(make_user: Any, make_provider: Any,
                                                            make_need: Any,
                                                            make_offer: Any) -> None:
    pro = make_provider(radius_km=100)
    direct, nearby = [], []
    for i in range(4):
        customer = make_user()
        dealt = make_need(customer)
        make_offer(dealt, pro)
        nearby.append(dealt.id)
        customer.put(f"/api/v1/me/providers/{pro.provider.handle}", json={"favourite": True})
        # Sent directly from farther and farther away (bands 0..), and nearby ones between.
        far = (AUSTIN[0] + 0.4 * i, AUSTIN[1])
        direct.append(make_need(customer, audience="favourites",
                                location={"lat": far[0], "lon": far[1]}).id)
        nearby.append(make_need(make_user(), location={"lat": AUSTIN[0] + 0.2 * i,
                                                       "lon": AUSTIN[1]}, radius_km=100).id)
    everything = [n["id"] for n in pro.get("/api/v1/feed?limit=100").get_json()["items"]]
    assert sorted(everything) == sorted(direct + nearby)
    bands = [n["distance_band"] for n in pro.get("/api/v1/feed?limit=100").get_json()["items"]]
    assert len(set(bands)) > 1  # the two sources interleave across bands
    for limit in (1, 2, 3, 5):
        seen, cursor = [], None
        for _page in range(len(everything) + 1):  # a cursor that never ends fails, not hangs
            url = f"/api/v1/feed?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            body = pro.get(url).get_json()
            seen += [n["id"] for n in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert (seen, cursor) == (everything, None), limit
