"""DELETE /api/v1/me (and the account page's "Delete my account"): after it, no table holds
what identified the person — scanned column by column over db.metadata — while everybody
else's pages, threads, exports and reputations are whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Person, committed_state, error_of, need_data
from pages import csrf_token
from sqlalchemy import JSON, Float, String, Text, select, update

from marketplace import lifecycle, privacy
from marketplace.accounts import sessions
from marketplace.accounts.models import User
from marketplace.contacts import services as contacts
from marketplace.extensions import db
from marketplace.messages import services as messages
from marketplace.ratings import services as ratings
from marketplace.ratings.models import Rating

# An exact place nobody else uses (central Austin, to the 8th decimal).
HOME = (30.26712345, -97.74312345)
BASE = (30.28123457, -97.73198765)
HANDLE = "pallas-kitchen"


class World(dict[str, Any]):
    pass


@pytest.fixture
def world(make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> World:
    """Cara (customer) and Pat (provider) deal with each other and with Dan and Quinn."""
    cara = make_user("Corvina Zelinsky", email="corvina.z@example.com", phone="+1 512 555 0147",
                     password="corvina's own password")
    dan = make_user("Dan Other")
    pat = make_provider(make_user("Pallas Quenby", email="pallas.q@example.com",
                                  phone="+1 512 555 0911"), base=BASE, handle=HANDLE)
    pat.provider.bio = "Pallas's kitchen on Quenby Street"
    db.session.commit()
    quinn = make_provider(make_user("Quinn Pro"))
    w = World(cara=cara, dan=dan, pat=pat, quinn=quinn)

    def job(customer: Person, pro: Person, title: str, stars: int | None = None) -> Any:
        need = make_need(customer, title=title, description=f"{title}: details",
                         location={"lat": HOME[0], "lon": HOME[1]} if customer is cara else
                         need_data()["location"], address=f"{title} street 7")
        offer = make_offer(need, pro, message=f"{pro.user.name} offers")
        lifecycle.accept(customer.user, offer.id)
        lifecycle.complete(customer.user, need.id)
        if stars:
            lifecycle.rate(customer.user, need.id, {"stars": stars, "comment": "Lovely food"})
        return need, offer

    w["rated_need"], w["rated_offer"] = job(cara, pat, "Zelinsky birthday buffet", 5)
    w["dan_need"], _ = job(dan, pat, "Dan's dinner", 3)
    rating_id = db.session.scalar(select(Rating.id).where(Rating.need_id == w["rated_need"].id))
    ratings.reply(pat.user, rating_id, "Thanks, Pallas here")
    w["open_need"] = make_need(cara, title="Zelinsky garden party", description="Near my house",
                               location={"lat": HOME[0], "lon": HOME[1]},
                               address="12 Secret Lane")
    w["open_offer"] = make_offer(w["open_need"], quinn, message="Quinn can do it")
    w["pat_open_offer"] = make_offer(w["open_need"], pat, message="Pallas would love to")
    messages.send(cara.user, w["open_offer"].id, "Corvina here, call 555 0147 please")
    messages.send(quinn.user, w["open_offer"].id, "Will do")
    messages.send(pat.user, w["pat_open_offer"].id, "Pallas's secret menu attached")
    w["dan_open"] = make_need(dan, title="Dan's lunch")
    w["pat_on_dan"] = make_offer(w["dan_open"], pat, message="Pallas for Dan")
    lifecycle.block(cara.user, make_provider().provider.handle)
    contacts.update(cara.user, HANDLE, {"note": "Corvina's note: undercharges, punctual",
                                        "would_hire_again": True, "favourite": True})
    sessions.start(cara.user, remember=True)  # a web sign-in
    r = cara.post("/api/v1/needs", json=need_data(title="Zelinsky via script",
                                                  location={"lat": HOME[0], "lon": HOME[1]}),
                  headers={"Idempotency-Key": "erase-key-1"})
    assert r.status_code == 201, r.get_json()
    w["script_need"] = r.get_json()["id"]
    return w


def secrets_of(person: Person, w: World) -> tuple[set[str], set[float]]:
    """What identifies ``person``: their strings (and each longer word of their name) and
    their exact coordinates."""
    user = person.user
    words = {user.name, user.email, user.phone or "", *(p for p in user.name.split() if len(p) > 4)}
    floats: set[float] = set()
    if person is w["cara"]:
        words |= {"Secret Lane", "Zelinsky birthday buffet street 7", "call 555 0147",
                  "undercharges, punctual",
                  "Near my house", "garden party"}
        floats |= set(HOME)
    if person is w["pat"]:
        words |= {"Quenby Street", "secret menu", person.provider.display_name}
        floats |= set(BASE)
    return {s for s in words if s}, floats


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def leftovers(words: set[str], floats: set[float]) -> list[str]:
    """Every (table.column, value) of the whole database that still holds one of them."""
    found = []
    lowered = {w.lower() for w in words}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for column in table.c:
                    value = row[column.name]
                    if value is None:
                        continue
                    if isinstance(column.type, JSON):
                        data = value if not isinstance(value, str) else json.loads(value)
                        values = list(_walk(data))
                    elif isinstance(column.type, String | Text | Float):
                        values = [value]
                    else:
                        continue
                    for v in values:
                        if (isinstance(v, str) and any(w in v.lower() for w in lowered)
                                or isinstance(v, float) and v in floats):
                            found.append(f"{table.name}.{column.name} = {v!r}")
    return found


def _password(person: Person) -> dict[str, str]:
    return {"password": person.password}


def test_the_scan_sees_the_person_before(world: World) -> None:
    """The scan below is real: before the erasure it finds every kind of secret."""
    for who in ("cara", "pat"):
        found = leftovers(*secrets_of(world[who], world))
        tables = {f.split(".")[0] for f in found}
        assert {"users", "needs" if who == "cara" else "providers", "messages",
                "notifications"} <= tables, found


@pytest.mark.parametrize("who", ["cara", "pat"])
def test_erasure_leaves_nothing_that_identifies_the_person(world: World, who: str) -> None:
    person = world[who]
    words, floats = secrets_of(person, world)
    r = person.delete("/api/v1/me", json=_password(person))
    assert r.status_code == 204, r.get_json()
    db.session.remove()
    assert leftovers(words, floats) == []


def test_erasure_forgets_where_and_how_the_person_reads(world: World) -> None:
    """The zone and locale an account's pages are shown in say where its person lives."""
    cara = world["cara"]
    user_id = cara.user.id
    with db.engine.begin() as connection:
        connection.execute(update(User).where(User.id == user_id).values(
            time_zone="Europe/Vilnius", locale="lt_LT"))
    assert cara.delete("/api/v1/me", json=_password(cara)).status_code == 204
    db.session.remove()
    erased = db.session.get(User, user_id)
    assert erased is not None and (erased.time_zone, erased.locale) == (None, None)


def test_erasure_forgets_where_the_person_s_rated_jobs_were(world: World) -> None:
    """A rating stays (the provider's count), but its job's tile ("near you") says where the
    person lived: it goes with the name."""
    cara = world["cara"]
    rated = world["rated_need"].id
    before = db.session.scalars(select(Rating).where(Rating.need_id == rated)).one()
    assert (before.near_row, before.near_col) != (None, None)
    assert cara.delete("/api/v1/me", json=_password(cara)).status_code == 204
    db.session.remove()
    after = db.session.scalars(select(Rating).where(Rating.need_id == rated)).one()
    assert (after.customer_id, after.near_row, after.near_col) == (None, None, None)


def test_erasing_a_customer_keeps_everyone_elses_world(world: World, client: Any,
                                                      auth: Any) -> None:
    cara, pat, quinn, dan = world["cara"], world["pat"], world["quinn"], world["dan"]
    pages = auth.sign_in(pat)
    before = pat.get(f"/api/v1/providers/{HANDLE}").get_json()["reputation"]
    ids = {k: world[k].id for k in ("rated_need", "open_offer", "dan_need")}
    assert cara.delete("/api/v1/me", json=_password(cara)).status_code == 204
    db.session.remove()
    profile = client.get(f"/api/v1/providers/{HANDLE}").get_json()
    assert profile["reputation"] == before
    listed = client.get(f"/api/v1/providers/{HANDLE}/ratings").get_json()
    assert [r["author"] for r in listed["items"]].count("Former customer") == 1
    # The open need was cancelled through the lifecycle; the offers on it closed with it.
    need = pat.get(f"/api/v1/needs/{ids['rated_need']}").get_json()
    assert need["title"] == privacy.ERASED and need["customer"] is None
    offer = quinn.get(f"/api/v1/offers/{ids['open_offer']}").get_json()
    assert offer["status"] == "declined"
    thread = quinn.get(f"/api/v1/offers/{ids['open_offer']}/messages").get_json()
    assert sorted(m["body"] for m in thread["items"]) == sorted([privacy.ERASED, "Will do"])
    # The other parties' exports, feeds and pages still work.
    for person in (pat, quinn, dan):
        assert person.get("/api/v1/me/export").status_code == 200
    assert pat.get("/api/v1/feed").status_code == 200
    assert dan.get(f"/api/v1/needs/{ids['dan_need']}").status_code == 200
    # Their pages too: the job page, the jobs list, the feed, the public profile.
    for path in (f"/needs/{ids['rated_need']}", "/jobs", "/feed", f"/p/{HANDLE}"):
        page = pages.get(path)
        assert page.status_code == 200, path
        assert "Corvina" not in page.get_data(as_text=True), path
    # The address can sign up again.
    again = client.post("/api/v1/users", json={"email": "corvina.z@example.com",
                                               "password": "another long one", "name": "C"})
    assert again.status_code == 202, again.get_json()


def test_erasing_a_provider_removes_the_profile_and_reserves_the_handle(
        world: World, client: Any, make_user: Any) -> None:
    pat, cara = world["pat"], world["cara"]
    handle = HANDLE
    ids = {k: world[k].id for k in ("rated_need", "pat_open_offer")}
    pat_provider_id = pat.provider.id
    assert pat.delete("/api/v1/me", json=_password(pat)).status_code == 204
    db.session.remove()
    assert client.get(f"/api/v1/providers/{handle}").status_code == 404
    assert client.get(f"/p/{handle}").status_code == 404
    impostor = make_user("Im Poster")
    r = impostor.put("/api/v1/me/provider", json={
        "handle": handle, "display_name": "Pallas Cooks", "categories": ["catering"],
        "base": {"lat": BASE[0], "lon": BASE[1]}, "radius_km": 10})
    assert r.status_code == 422 and "handle" in error_of(r)["fields"], r.get_json()
    # Nor by the name the tombstone row now carries, nor in another case.
    for other in (f"erased-{pat_provider_id}", handle.upper()):
        r = impostor.put("/api/v1/me/provider", json={
            "handle": other, "display_name": "Pallas Cooks", "categories": ["catering"],
            "base": {"lat": BASE[0], "lon": BASE[1]}, "radius_km": 10})
        assert r.status_code == 422 and "handle" in error_of(r)["fields"], (other, r.get_json())
    # Pending offers were withdrawn: the open need's customer sees it.
    offer = cara.get(f"/api/v1/offers/{ids['pat_open_offer']}").get_json()
    assert offer["status"] == "withdrawn"
    assert cara.get(f"/api/v1/needs/{ids['rated_need']}").status_code == 200
    assert cara.get("/api/v1/me/export").status_code == 200


def test_after_erasure_nothing_signs_in(world: World, auth: Any) -> None:
    cara = world["cara"]
    browser = auth.sign_in(cara)
    assert browser.get("/account/tokens").status_code == 200
    assert cara.delete("/api/v1/me", json=_password(cara)).status_code == 204
    # The old session cookie: the user loader no longer knows them.
    r = browser.get("/account/tokens")
    assert r.status_code == 302 and "/signin" in r.headers["Location"]
    # The old token.
    assert cara.get("/api/v1/me").status_code == 401
    # The old password, at the API and at the sign-in form.
    r = cara.client.post("/api/v1/tokens", json={"email": "corvina.z@example.com",
                                                 "password": cara.password})
    assert r.status_code == 401
    erased = db.session.get(User, cara.user.id)
    assert erased is not None and erased.erased_at is not None
    r = cara.client.post("/api/v1/tokens", json={"email": erased.email, "password": "!erased"})
    assert r.status_code == 401


@pytest.mark.parametrize("password", ["not the password", "", None, 12345])
def test_a_wrong_password_changes_nothing(world: World, password: Any) -> None:
    cara = world["cara"]
    before = committed_state()
    body = {} if password is None else {"password": password}
    r = cara.delete("/api/v1/me", json=body)
    assert r.status_code in (403, 422), r.get_json()
    assert "password" in error_of(r)["fields"]
    assert committed_state() == before
    # Another person's password does not erase either account.
    r = cara.delete("/api/v1/me", json=_password(world["dan"]))
    assert r.status_code == 403 and committed_state() == before


def test_the_web_page_deletes_with_the_password(world: World, auth: Any) -> None:
    cara = world["cara"]
    uid = cara.user.id
    browser = auth.sign_in(cara)
    page = browser.get("/account/tokens").get_data(as_text=True)
    assert 'href="/account/delete"' in page
    form = browser.get("/account/delete")
    assert form.status_code == 200
    token = csrf_token(form) if auth.app.config["WTF_CSRF_ENABLED"] else ""
    before = committed_state()
    r = browser.post("/account/delete", data={"password": "wrong one", "csrf_token": token})
    assert r.status_code == 200 and 'id="e-password"' in r.get_data(as_text=True)
    assert committed_state() == before
    r = browser.post("/account/delete", data={"password": cara.password, "csrf_token": token})
    assert r.status_code == 302
    db.session.remove()
    assert db.session.get(User, uid).erased_at is not None  # type: ignore[union-attr]
    assert browser.get("/account/tokens").status_code == 302


def test_erasing_someone_who_is_both_customer_and_provider(world: World, make_provider: Any,
                                                           make_need: Any, make_offer: Any) -> None:
    """One account, both sides: Cara also cooks, from an exact base of her own, and offers on
    Dan's need; erasing her clears both sides and withdraws that offer."""
    cara, dan = world["cara"], world["dan"]
    make_provider(cara, base=(30.29876543, -97.71234567), handle="corvina-cakes")
    cara.provider.bio = "Corvina Zelinsky bakes on Elm Row"
    db.session.commit()
    offer = make_offer(make_need(dan, title="Dan's cake"), cara, message="Corvina's cake offer")
    offer_id = offer.id
    words, floats = secrets_of(cara, world)
    words |= {"Elm Row", "cake offer"}
    floats |= {30.29876543, -97.71234567}
    assert cara.delete("/api/v1/me", json=_password(cara)).status_code == 204
    db.session.remove()
    assert leftovers(words, floats) == []
    assert dan.get(f"/api/v1/offers/{offer_id}").get_json()["status"] == "withdrawn"
    assert dan.get("/api/v1/providers/corvina-cakes").status_code == 404
