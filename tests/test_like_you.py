""""People like you": beside the crowd's score, the scores from customers whose ratings agree
with the viewer's and from customers near the viewer -- the k floor, the agreement rule at its
edges, never a name, diffing two reads (throwaway peers), and whose ratings do not count."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import AUSTIN
from sqlalchemy import event

from marketplace import lifecycle, privacy
from marketplace.extensions import db
from marketplace.moderation import services as moderation
from marketplace.offers import reputation

ROUND_ROCK = (30.5083, -97.6789)  # ~27 km north: outside the 3 x 3 tiles around Austin
GROUP_KEYS = {"score", "customers"}


@pytest.fixture
def admin(make_user: Any) -> Any:
    person = make_user(name="Ada Admin")
    moderation.set_admin(person.user.email, True)
    return person


@pytest.fixture
def rate(make_need: Any, make_offer: Any) -> Any:
    """``rate(customer, pro, stars, where)``: a finished job of ``pro`` for ``customer`` at
    ``where``, rated ``stars``."""

    def rate(customer: Any, pro: Any, stars: int, where: tuple[float, float] = AUSTIN) -> Any:
        need = make_need(customer, location={"lat": where[0], "lon": where[1]}, radius_km=50)
        offer = make_offer(need, pro)
        lifecycle.accept(customer.user, offer.id)
        lifecycle.complete(customer.user, need.id)
        return lifecycle.rate(customer.user, need.id, {"stars": stars, "comment": ""})

    return rate


@pytest.fixture
def world(make_user: Any, make_provider: Any, rate: Any) -> dict[str, Any]:
    """The viewer rated P1 5 and P2 1; two customers agree with that and rated the target T."""
    p1, p2 = make_provider(), make_provider()
    target = make_provider(radius_km=60, handle="target-pro")
    viewer = make_user(name="Vera Viewer")
    rate(viewer, p1, 5)
    rate(viewer, p2, 1)
    peers = []
    for stars in (4, 4):
        peer = make_user(name=f"Peer{len(peers)} Secretname")
        rate(peer, p1, 5)
        rate(peer, p2, 2)  # 0.5 apart on average: agrees
        rate(peer, target, stars)
        peers.append(peer)
    return {"p1": p1, "p2": p2, "target": target, "viewer": viewer, "peers": peers}


def profile(reader: Any | None, client: Any, handle: str = "target-pro") -> dict[str, Any]:
    url = f"/api/v1/providers/{handle}"
    r = reader.get(url) if reader is not None else client.get(url)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def agreeing(body: dict[str, Any]) -> Any:
    return body["like_you"]["agreeing"]


def test_k_floor_and_the_agreement_rule_at_its_edges(world: Any, make_user: Any, rate: Any,
                                                     client: Any, auth: Any) -> None:
    viewer, target, p1, p2 = world["viewer"], world["target"], world["p1"], world["p2"]
    # Two customers agree with the viewer (and two rated near the viewer's latest need).
    assert profile(viewer, client)["like_you"] == {"min_customers": 3, "agreeing": None,
                                                   "nearby": None}
    # One provider in common is not enough, however alike the stars.
    lonely = make_user()
    rate(lonely, p1, 5)
    rate(lonely, target, 1)
    # Two in common but 1.5 stars apart on average: does not agree.
    apart = make_user()
    rate(apart, p1, 3)
    rate(apart, p2, 2)
    rate(apart, target, 1)
    assert agreeing(profile(viewer, client)) is None
    # Exactly 1 star apart on average agrees: the third such customer lifts the floor.
    edge = make_user()
    rate(edge, p1, 4)
    rate(edge, p2, 2)
    rate(edge, target, 5)
    assert agreeing(profile(viewer, client)) == {"score": 4.5, "customers": 3}  # 4.33 -> 4.5
    # Signed out, or with a token that is not valid: the crowd's score only.
    assert profile(None, client)["like_you"] is None
    r = client.get("/api/v1/providers/target-pro", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 200 and r.get_json()["like_you"] is None
    # The page shows it to the viewer, names nobody, and shows nothing signed out.
    page = auth.sign_in(viewer).get("/p/target-pro").get_data(as_text=True)
    assert "People like you:" in page and "(3+ customers)" in page
    assert "Secretname" not in page
    assert "People like you:" not in client.get("/p/target-pro").get_data(as_text=True)


def test_never_named_and_diffing_two_reads_after_a_throwaway_rating_learns_nothing(
        world: Any, make_user: Any, rate: Any, client: Any) -> None:
    viewer, target, p1, p2 = world["viewer"], world["target"], world["p1"], world["p2"]

    def throwaway_peer(stars: int) -> Any:
        peer = make_user(name="Throwaway Account")
        rate(peer, p1, 5)
        rate(peer, p2, 1)
        rate(peer, target, stars)
        return peer

    throwaway_peer(4)
    before = profile(viewer, client)
    group = agreeing(before)
    assert set(group) == GROUP_KEYS and group == {"score": 4.0, "customers": 3}
    # Only aggregates: no id, handle, name or e-mail of anyone who rated.
    text = str(before["like_you"])
    for peer in world["peers"]:
        assert peer.user.name not in text and peer.user.email not in text
        assert str(peer.user.id) not in text
    # The attacker adds one rating, at either extreme: the read does not move at all.
    throwaway_peer(1)
    assert profile(viewer, client)["like_you"] == before["like_you"]
    # Only a group of ratings (here the 4th and 5th together) can move it: the bucket edge.
    throwaway_peer(5)
    after = agreeing(profile(viewer, client))
    assert after["customers"] == 5 and after["score"] * 2 == int(after["score"] * 2)
    # More ratings of the same provider by one peer change nothing: one verdict each.
    rate(world["peers"][0], target, 1)
    assert agreeing(profile(viewer, client)) == after


def test_suspended_erased_and_hidden_ratings_do_not_count(world: Any, make_user: Any, rate: Any,
                                                          admin: Any, client: Any) -> None:
    viewer, target, p1, p2 = world["viewer"], world["target"], world["p1"], world["p2"]
    third = make_user(password="correct horse battery")
    rate(third, p1, 5)
    rate(third, p2, 1)
    rating = rate(third, target, 4)
    assert agreeing(profile(viewer, client)) == {"score": 4.0, "customers": 3}

    def act(action: str, target_type: str, target_id: int) -> None:
        r = admin.post("/api/v1/admin/actions", json={
            "action": action, "target_type": target_type, "target_id": target_id})
        assert r.status_code == 200, r.get_json()

    act("suspend", "user", third.user.id)
    assert agreeing(profile(viewer, client)) is None
    act("unsuspend", "user", third.user.id)
    assert agreeing(profile(viewer, client)) is not None
    act("hide", "rating", rating.id)
    assert agreeing(profile(viewer, client)) is None
    act("unhide", "rating", rating.id)
    assert agreeing(profile(viewer, client)) is not None
    privacy.erase(db.session.get(type(third.user), third.user.id), "correct horse battery")
    assert agreeing(profile(viewer, client)) is None


def test_nearby_score_on_the_customers_offers_in_one_statement(
        make_user: Any, make_provider: Any, make_need: Any, make_offer: Any, rate: Any,
        app: Any) -> None:
    pros = [make_provider(radius_km=60) for _ in range(3)]
    target = pros[0]
    for place, stars in ((AUSTIN, 5), (AUSTIN, 4), (ROUND_ROCK, 1), (ROUND_ROCK, 1)):
        rate(make_user(), target, stars, place)
    viewer = make_user()
    need = make_need(viewer)
    for pro in pros:
        make_offer(need, pro)

    def nearby() -> Any:
        body = viewer.get(f"/api/v1/needs/{need.id}/offers").get_json()
        return {o["provider"]["handle"]: o["provider"]["like_you"]["nearby"]
                for o in body["items"]}

    handle = target.provider.handle
    assert nearby()[handle] is None  # two near Austin; Round Rock is not near
    rate(make_user(), target, 5)
    assert nearby()[handle] == {"score": 4.5, "customers": 3}  # 4.67 -> 4.5
    assert {h for h, g in nearby().items() if g} == {handle}
    # The provider reading their own offer is not told what anyone like the customer thought.
    mine = target.get("/api/v1/offers").get_json()["items"][0]
    assert mine["provider"]["like_you"] is None
    # One statement for every provider of the page, however many.
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    viewer_id, ids = viewer.user.id, [p.provider.id for p in pros]
    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        reputation.like_you(viewer_id, ids[:1], AUSTIN)
        reputation.like_you(viewer_id, ids, AUSTIN)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2, statements


def test_each_statement_is_built_once_and_bound_per_reader(world: Any, make_user: Any,
                                                           rate: Any, monkeypatch: Any) -> None:
    """The statement is built once per process and reused with each reader's own viewer,
    providers and place: two readers in a row get each their own groups, and no call builds
    the statement again."""
    target, viewer, peer = world["target"], world["viewer"], world["peers"][0]
    edge = make_user()  # agrees with the viewer and with each peer (1 and 0.5 stars apart)
    rate(edge, world["p1"], 4)
    rate(edge, world["p2"], 2)
    rate(edge, target, 5)
    reputation._like_you_statement.cache_clear()
    built: list[str] = []
    for name in ("_agreeing_rows", "_nearby_rows"):
        original = getattr(reputation, name)
        monkeypatch.setattr(reputation, name,
                            lambda original=original, name=name: built.append(name) or original())
    tid, p1 = target.provider.id, world["p1"].provider.id
    three = {"score": 4.5, "customers": 3}  # 4, 4 and 5: 4.33 -> 4.5
    assert reputation.like_you(viewer.user.id, [tid], AUSTIN)[tid] == {
        "min_customers": 3, "agreeing": three, "nearby": three}
    # the peer's own groups leave the peer out: two customers each, below the floor
    assert reputation.like_you(peer.user.id, [tid], AUSTIN)[tid] == {
        "min_customers": 3, "agreeing": None, "nearby": None}
    assert reputation.like_you(viewer.user.id, [p1, tid], AUSTIN)[tid]["agreeing"] == three
    assert reputation.like_you(viewer.user.id, [tid], None)[tid] == {
        "min_customers": 3, "agreeing": three, "nearby": None}
    assert reputation.like_you(viewer.user.id, [tid], ROUND_ROCK)[tid]["nearby"] is None
    assert sorted(built) == ["_agreeing_rows", "_agreeing_rows", "_nearby_rows"]
