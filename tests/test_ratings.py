"""Ratings and reputation: only the customer of a completed job rates its provider, once, with
1-5 integer stars and optional sub-scores; the provider may reply once. Reputation adds up to
count, mean, histogram, a Bayesian score (checked against an independent computation with
hypothesis), is_new, completed jobs and completion rate."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from conftest import committed_count, committed_rows, error_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError

from marketplace import lifecycle
from marketplace.errors import Conflict, Forbidden, NotFound
from marketplace.extensions import db
from marketplace.geo import lat_row
from marketplace.needs.models import Need, NeedStatus
from marketplace.offers import reputation
from marketplace.providers import services as providers
from marketplace.ratings import services as ratings
from marketplace.ratings.models import SUB_SCORES, Rating


def rating_rows(need_id: int | None = None) -> list[Any]:
    return committed_rows(Rating, need_id=need_id)


def count_ratings() -> int:
    return committed_count(Rating)


def rate_url(need: Any) -> str:
    return f"/api/v1/needs/{need.id}/rating"


# --- rating ---------------------------------------------------------------------------------


def test_the_customer_rates_a_completed_job(make_user, make_provider, make_job):
    customer = make_user(name="Ada Lovelace")
    pro = make_provider()
    need = make_job(customer, pro).need
    r = customer.post(rate_url(need), json={
        "stars": 4, "comment": "  Great food, a little late.  ",
        "scores": {"quality": 5, "punctuality": 2}})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["stars"] == 4
    assert body["need_id"] == need.id
    assert body["provider"] == pro.provider.handle
    assert body["author"] == "Ada"
    assert body["comment"] == "Great food, a little late."
    assert body["scores"] == {"quality": 5, "punctuality": 2, "communication": None}
    assert body["reply"] is None and body["replied_at"] is None
    [row] = rating_rows(need.id)
    assert (row["provider_id"], row["customer_id"], row["stars"]) == (
        pro.provider.id, customer.user.id, 4)
    assert (row["quality"], row["punctuality"], row["communication"]) == (5, 2, None)


def test_service_level_rating_with_null_scores(make_user, make_job):
    customer = make_user()
    need, offer, _ = make_job(customer)
    rating = lifecycle.rate(customer.user, need.id, {"stars": 5, "scores": None})
    assert rating.provider_id == offer.provider_id
    assert (rating.quality, rating.punctuality, rating.communication) == (None, None, None)
    assert rating.comment == ""


def _open(customer, pro, make_need, make_offer, make_job):
    need = make_need(customer)
    make_offer(need, pro)
    return need


def _assigned(customer, pro, make_need, make_offer, make_job):
    return make_job(customer, pro, done=False).need


def _cancelled_open(customer, pro, make_need, make_offer, make_job):
    need = _open(customer, pro, make_need, make_offer, make_job)
    lifecycle.cancel(customer.user, need.id, None)
    return need


def _cancelled_assigned(customer, pro, make_need, make_offer, make_job):
    need = _assigned(customer, pro, make_need, make_offer, make_job)
    lifecycle.cancel(pro.user, need.id, "van broke down")
    return need


def _expired(customer, pro, make_need, make_offer, make_job):
    need = _open(customer, pro, make_need, make_offer, make_job)
    with db.engine.begin() as conn:
        conn.execute(update(Need).where(Need.id == need.id)
                     .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    db.session.expire_all()
    assert need.id in lifecycle.expire_due()
    return need


@pytest.mark.parametrize(("setup", "state"), [
    (_open, "open"), (_assigned, "assigned"), (_cancelled_open, "cancelled"),
    (_cancelled_assigned, "cancelled"), (_expired, "expired"),
])
def test_only_a_completed_job_can_be_rated(make_user, make_provider, make_need, make_offer, make_job,
                                           setup, state):
    customer = make_user()
    pro = make_provider()
    need = setup(customer, pro, make_need, make_offer, make_job)
    r = customer.post(rate_url(need), json={"stars": 5})
    assert r.status_code == 409
    assert state in error_of(r)["message"]
    with pytest.raises(Conflict):
        lifecycle.rate(customer.user, need.id, {"stars": 5})
    assert count_ratings() == 0


def test_only_the_customer_rates(make_user, make_provider, make_need, make_offer):
    customer = make_user()
    pro = make_provider()
    loser = make_provider()
    need = make_need(customer)
    won = make_offer(need, pro)
    make_offer(need, loser)
    lifecycle.accept(customer.user, won.id)
    lifecycle.complete(customer.user, need.id)
    r = pro.post(rate_url(need), json={"stars": 5})
    assert r.status_code == 403
    error_of(r)
    with pytest.raises(Forbidden):
        lifecycle.rate(pro.user, need.id, {"stars": 5})
    for person in (loser, make_user(), make_provider()):
        r = person.post(rate_url(need), json={"stars": 1})
        assert r.status_code == 404
        error_of(r)
        with pytest.raises(NotFound):
            lifecycle.rate(person.user, need.id, {"stars": 1})
    assert customer.post("/api/v1/needs/999999/rating", json={"stars": 5}).status_code == 404
    assert count_ratings() == 0


def test_a_job_is_rated_once(make_user, make_job):
    customer = make_user()
    need = make_job(customer).need
    assert customer.post(rate_url(need), json={"stars": 5}).status_code == 201
    r = customer.post(rate_url(need), json={"stars": 1, "comment": "changed my mind"})
    assert r.status_code == 409
    error_of(r)
    with pytest.raises(Conflict):
        lifecycle.rate(customer.user, need.id, {"stars": 2})
    [row] = rating_rows(need.id)
    assert row["stars"] == 5 and row["comment"] == ""


def test_the_database_refuses_a_second_rating_row_for_a_need(make_user, make_job, backend):
    customer = make_user()
    need, offer, _ = make_job(customer)
    lifecycle.rate(customer.user, need.id, {"stars": 5})
    with pytest.raises(IntegrityError) as exc, db.engine.begin() as conn:
        conn.execute(insert(Rating).values(need_id=need.id, provider_id=offer.provider_id,
                                           customer_id=customer.user.id, stars=1, comment="",
                                           created_at=datetime.now(UTC)))
    if backend == "postgresql":
        assert "need_id" in str(exc.value)
    assert [r["stars"] for r in rating_rows(need.id)] == [5]


def test_the_database_refuses_stars_out_of_range(make_user, make_job):
    customer = make_user()
    need, offer, _ = make_job(customer)
    for column, value in (("stars", 6), ("stars", 0), ("quality", 9)):
        values = {"need_id": need.id, "provider_id": offer.provider_id, "stars": 3,
                  "comment": "", "created_at": datetime.now(UTC), column: value}
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(insert(Rating).values(**values))
    assert count_ratings() == 0


def test_stars_must_be_an_integer_from_1_to_5(make_user, make_job):
    customer = make_user()
    need = make_job(customer).need
    for stars in (0, 6, -1, 4.5, 5.0, "5", True, None, [5]):
        r = customer.post(rate_url(need), json={"stars": stars})
        assert r.status_code == 422, stars
        assert set(error_of(r)["fields"]) == {"stars"}, stars
    r = customer.post(rate_url(need), json={"comment": "no stars"})
    assert r.status_code == 422
    assert "stars" in error_of(r)["fields"]
    assert count_ratings() == 0
    for stars in (1, 5):
        other_need = make_job(customer).need
        assert customer.post(rate_url(other_need), json={"stars": stars}).status_code == 201
    assert sorted(r["stars"] for r in rating_rows()) == [1, 5]


def test_sub_scores_are_each_1_to_5(make_user, make_job):
    customer = make_user()
    need = make_job(customer).need
    for name in ("quality", "punctuality", "communication"):
        for value in (0, 6, 4.5, "3"):
            r = customer.post(rate_url(need), json={"stars": 4, "scores": {name: value}})
            assert r.status_code == 422, (name, value)
            fields = error_of(r)["fields"]
            assert set(fields) == {"scores"} and set(fields["scores"]) == {name}
    r = customer.post(rate_url(need), json={"stars": 4, "scores": {"speed": 3}})
    assert r.status_code == 422
    assert "speed" in error_of(r)["fields"]["scores"]
    assert count_ratings() == 0
    r = customer.post(rate_url(need), json={"stars": 4, "scores": {
        "quality": 1, "punctuality": 5, "communication": 3}})
    assert r.status_code == 201
    assert r.get_json()["scores"] == {"quality": 1, "punctuality": 5, "communication": 3}


def test_rating_input_cannot_set_other_fields(make_user, make_job):
    customer = make_user()
    need = make_job(customer).need
    for extra in ({"provider_id": 1}, {"reply": "thanks me"}, {"customer_id": 2}):
        r = customer.post(rate_url(need), json={"stars": 5, **extra})
        assert r.status_code == 422
        assert set(error_of(r)["fields"]) == set(extra)
    r = customer.post(rate_url(need), json={"stars": 5, "comment": "x" * 2001})
    assert r.status_code == 422
    assert "comment" in error_of(r)["fields"]
    assert count_ratings() == 0


# --- replies --------------------------------------------------------------------------------


def test_the_rated_provider_replies_once(make_user, make_provider, make_job):
    customer = make_user()
    pro = make_provider()
    need = make_job(customer, pro).need
    rating = lifecycle.rate(customer.user, need.id, {"stars": 2, "comment": "late"})
    reply_url = f"/api/v1/ratings/{rating.id}/reply"
    r = pro.post(reply_url, json={"body": "  Sorry, traffic.  "})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["reply"] == "Sorry, traffic." and body["replied_at"] is not None
    assert body["stars"] == 2 and body["comment"] == "late"
    r = pro.post(reply_url, json={"body": "Second thoughts"})
    assert r.status_code == 409
    error_of(r)
    with pytest.raises(Conflict):
        ratings.reply(pro.user, rating.id, "third")
    [row] = rating_rows(need.id)
    assert row["reply"] == "Sorry, traffic."


def test_only_the_rated_provider_may_reply(make_user, make_provider, make_job):
    customer = make_user()
    pro = make_provider()
    need = make_job(customer, pro).need
    rating = lifecycle.rate(customer.user, need.id, {"stars": 3})
    for person in (customer, make_provider(), make_user()):
        r = person.post(f"/api/v1/ratings/{rating.id}/reply", json={"body": "not mine"})
        assert r.status_code == 403
        error_of(r)
        with pytest.raises(Forbidden):
            ratings.reply(person.user, rating.id, "not mine")
    assert pro.post("/api/v1/ratings/999999/reply", json={"body": "x"}).status_code == 404
    assert rating_rows(need.id)[0]["reply"] is None


def test_a_reply_body_is_required(make_user, make_provider, make_job):
    customer = make_user()
    pro = make_provider()
    need = make_job(customer, pro).need
    rating = lifecycle.rate(customer.user, need.id, {"stars": 3})
    for payload in ({}, {"body": ""}, {"body": "   "}, {"body": "x" * 2001}, {"body": 5}):
        r = pro.post(f"/api/v1/ratings/{rating.id}/reply", json=payload)
        assert r.status_code == 422, payload
        assert "body" in error_of(r)["fields"]
    assert rating_rows(need.id)[0]["reply"] is None


# --- reputation -----------------------------------------------------------------------------


def reputation_of(client: Any, handle: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/providers/{handle}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["reputation"]


def test_reputation_on_the_public_profile(app, client, make_user, make_provider, make_job):
    pro, other, newcomer = make_provider(), make_provider(), make_provider()
    for stars, who in ((5, pro), (4, pro), (1, other)):
        customer = make_user()
        need = make_job(customer, who).need
        lifecycle.rate(customer.user, need.id, {"stars": stars, "scores": {"quality": stars}})

    weight = app.config["RATING_PRIOR_WEIGHT"]
    m = Fraction(10, 3)  # every rating on the platform: 5, 4, 1
    rep = reputation_of(client, pro.provider.handle)
    assert rep["count"] == 2
    assert rep["mean"] == 4.5
    assert rep["histogram"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}
    assert rep["score"] == pytest.approx(float((weight * m + 9) / (weight + 2)), abs=1e-3)
    assert rep["is_new"] is True
    assert rep["completed_jobs"] == 2
    assert rep["completion_rate"] == 1.0
    assert rep["sub_scores"]["quality"] == 4.5

    rep = reputation_of(client, other.provider.handle)
    assert rep["count"] == 1 and rep["mean"] == 1.0
    assert rep["score"] == pytest.approx(float((weight * m + 1) / (weight + 1)), abs=1e-3)

    rep = reputation_of(client, newcomer.provider.handle)
    assert rep["count"] == 0 and rep["mean"] is None
    assert rep["score"] == pytest.approx(float(m), abs=1e-3)
    assert rep["histogram"] == {str(s): 0 for s in range(1, 6)}
    assert rep["is_new"] is True
    assert rep["completed_jobs"] == 0 and rep["completion_rate"] is None

    # a third rating: no longer new
    customer = make_user()
    need = make_job(customer, pro).need
    lifecycle.rate(customer.user, need.id, {"stars": 3})
    rep = reputation_of(client, pro.provider.handle)
    assert rep["count"] == 3 and rep["is_new"] is False and rep["mean"] == 4.0
    assert client.get("/api/v1/providers/no-such-pro").status_code == 404


def test_completion_rate_counts_only_cancellations_by_the_provider(client, make_user, make_provider,
                                                                   make_need, make_offer, make_job):
    pro = make_provider()
    customer = make_user()
    make_job(customer, pro)
    make_job(customer, pro)
    dropped = make_job(customer, pro, done=False).need
    lifecycle.cancel(pro.user, dropped.id, "I double-booked")
    customer_cancelled = make_job(customer, pro, done=False).need
    lifecycle.cancel(customer.user, customer_cancelled.id, "party is off")
    make_job(customer, pro, done=False)  # in progress: counts neither way
    open_need = make_need(customer)  # offered, never accepted, then cancelled
    make_offer(open_need, pro)
    lifecycle.cancel(customer.user, open_need.id, None)

    rep = reputation_of(client, pro.provider.handle)
    assert rep["completed_jobs"] == 2
    assert rep["completion_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert reputation.for_providers([pro.provider.id])[pro.provider.id]["completion_rate"] == \
        pytest.approx(2 / 3, abs=1e-3)

    quitter = make_provider()
    gone = make_job(customer, quitter, done=False).need
    lifecycle.cancel(quitter.user, gone.id, "sick")
    rep = reputation_of(client, quitter.provider.handle)
    assert rep["completed_jobs"] == 0 and rep["completion_rate"] == 0.0


@pytest.fixture
def rated_world(make_user, make_provider):
    """Three providers and one customer; examples add and remove their own needs and ratings."""
    customer = make_user()
    return customer, [make_provider().provider.id for _ in range(3)]


def _rate_a_done_job(customer: Any, category: Any, provider_id: int, stars: int,
                     **sub_scores: int | None) -> None:
    """A completed need of ``customer``'s and their rating of ``provider_id`` (flushed)."""
    need = Need(customer_id=customer.user.id, category_id=category.id, title="t",
                description="", lat=30.0, lon=-97.0, lat_row=lat_row(30.0), radius_km=10,
                budget_amount=100, budget_currency="USD",
                expires_at=datetime.now(UTC) + timedelta(days=1), status=NeedStatus.COMPLETED,
                offer_count=0)
    db.session.add(need)
    db.session.flush()
    db.session.add(Rating(need_id=need.id, provider_id=provider_id,
                          customer_id=customer.user.id, stars=stars, comment="", **sub_scores))


star_lists = st.lists(st.lists(st.integers(1, 5), max_size=12), min_size=3, max_size=3)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stars=star_lists, weight=st.sampled_from([None, 0.5, 1.0, 2.0, 5.0, 12.5]))
def test_reputation_matches_an_independent_bayesian_computation(app, rated_world, stars, weight):
    customer, provider_ids = rated_world
    category = providers.category_by_slug("catering")
    saved_weight = app.config["RATING_PRIOR_WEIGHT"]
    if weight is not None:
        app.config["RATING_PRIOR_WEIGHT"] = weight
    c = Fraction(app.config["RATING_PRIOR_WEIGHT"])
    try:
        for pid, given_stars in zip(provider_ids, stars, strict=True):
            for s in given_stars:
                _rate_a_done_job(customer, category, pid, s)
        db.session.commit()

        everything = [s for lst in stars for s in lst]
        m = (Fraction(sum(everything), len(everything)) if everything
             else Fraction(reputation.DEFAULT_PLATFORM_MEAN))
        # two of the three asked for: the third's ratings still shape the platform mean
        got = reputation.for_providers(provider_ids[:2])
        got.update(reputation.for_providers(provider_ids[2:]))
        assert set(got) == set(provider_ids)
        for pid, given_stars in zip(provider_ids, stars, strict=True):
            rep = got[pid]
            n, total = len(given_stars), sum(given_stars)
            expected = (c * m + total) / (c + n)
            assert rep["count"] == n
            assert abs(rep["score"] - float(expected)) <= 0.0005 + 1e-9, (rep, float(expected))
            counts = Counter(given_stars)
            assert rep["histogram"] == {str(k): counts.get(k, 0) for k in range(1, 6)}
            assert rep["is_new"] is (n < 3)
            if n:
                assert abs(rep["mean"] - total / n) <= 0.005 + 1e-9
                low, high = sorted((float(m), total / n))
                assert low - 0.0005 <= rep["score"] <= high + 0.0005
            else:
                assert rep["mean"] is None
                assert abs(rep["score"] - float(m)) <= 0.0005 + 1e-9
    finally:
        app.config["RATING_PRIOR_WEIGHT"] = saved_weight
        db.session.rollback()
        db.session.execute(delete(Rating))
        db.session.execute(delete(Need).where(Need.customer_id == customer.user.id))
        db.session.commit()


sub_score = st.one_of(st.none(), st.integers(1, 5))
scored_lists = st.lists(st.lists(st.tuples(st.integers(1, 5), sub_score, sub_score, sub_score),
                                 max_size=8), min_size=3, max_size=3)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rated=scored_lists)
def test_sub_scores_and_histogram_match_an_independent_count(app, rated_world, rated):
    """Each sub-score is the mean of the ratings that gave it (None when none did), rounded
    to two places; the histogram counts every rating by its stars."""
    customer, provider_ids = rated_world
    category = providers.category_by_slug("catering")
    try:
        for pid, given_ratings in zip(provider_ids, rated, strict=True):
            for stars, *subs in given_ratings:
                _rate_a_done_job(customer, category, pid, stars,
                                 **dict(zip(SUB_SCORES, subs, strict=True)))
        db.session.commit()
        got = reputation.for_providers(provider_ids)
        for pid, given_ratings in zip(provider_ids, rated, strict=True):
            counts = Counter(stars for stars, *_ in given_ratings)
            assert got[pid]["histogram"] == {str(k): counts.get(k, 0) for k in range(1, 6)}
            for k, name in enumerate(SUB_SCORES):
                values = [r[k + 1] for r in given_ratings if r[k + 1] is not None]
                expected = round(sum(values) / len(values), 2) if values else None
                assert got[pid]["sub_scores"][name] == expected, (name, values)
    finally:
        db.session.rollback()
        db.session.execute(delete(Rating))
        db.session.execute(delete(Need).where(Need.customer_id == customer.user.id))
        db.session.commit()


# --- a provider's ratings -------------------------------------------------------------------


def test_a_providers_ratings_page_newest_first_with_replies_and_first_names(
        client, make_user, make_provider, make_job):
    pro = make_provider()
    made = []
    for i, name in enumerate(["Grace Hopper", "Alan Turing", "Barbara Liskov"]):
        customer = make_user(name=name)
        need = make_job(customer, pro).need
        made.append(lifecycle.rate(customer.user, need.id, {"stars": 3 + i, "comment": name}))
    ratings.reply(pro.user, made[1].id, "Thank you, Alan")
    elsewhere = make_user()
    need = make_job(elsewhere).need  # another provider's rating does not show up here
    lifecycle.rate(elsewhere.user, need.id, {"stars": 1})

    r = client.get(f"/api/v1/providers/{pro.provider.handle}/ratings")
    assert r.status_code == 200
    body = r.get_json()
    assert [i["id"] for i in body["items"]] == [m.id for m in reversed(made)]
    assert [i["author"] for i in body["items"]] == ["Barbara", "Alan", "Grace"]
    assert [i["reply"] for i in body["items"]] == [None, "Thank you, Alan", None]
    assert body["items"][1]["replied_at"] is not None
    assert all(i["provider"] == pro.provider.handle for i in body["items"])
    assert body["next_cursor"] is None

    page1 = client.get(f"/api/v1/providers/{pro.provider.handle}/ratings?limit=2").get_json()
    assert [i["author"] for i in page1["items"]] == ["Barbara", "Alan"]
    page2 = client.get(f"/api/v1/providers/{pro.provider.handle}/ratings?limit=2"
                       f"&cursor={page1['next_cursor']}").get_json()
    assert [i["author"] for i in page2["items"]] == ["Grace"] and page2["next_cursor"] is None
    assert client.get("/api/v1/providers/nobody-here/ratings").status_code == 404
    r = client.get(f"/api/v1/providers/{pro.provider.handle}/ratings?limit=0")
    assert r.status_code == 422
    assert "limit" in error_of(r)["fields"]


def test_reputation_statements_are_built_once_and_bound_per_call(app, rated_world):
    """The providers are a bound list (the Hypothesis test above asks for two sets in a row);
    no call builds the statements again."""
    customer, provider_ids = rated_world
    category = providers.category_by_slug("catering")
    for pid, stars in zip(provider_ids, (5, 1, 3), strict=True):
        _rate_a_done_job(customer, category, pid, stars)
    db.session.commit()
    reputation._statements.cache_clear()
    one = reputation.for_providers(provider_ids[:1])
    every = reputation.for_providers(provider_ids)
    assert one[provider_ids[0]] == every[provider_ids[0]]
    assert [every[p]["histogram"][str(s)] for p, s in zip(provider_ids, (5, 1, 3),
                                                            strict=True)] == [1, 1, 1]
    assert reputation.platform_mean() == 3.0
    info = reputation._statements.cache_info()
    assert (info.misses, info.hits) == (1, 4)


def test_each_process_keeps_the_platform_mean_for_a_while(app, rated_world, monkeypatch):
    """With ``RATING_MEAN_SECONDS`` set, the mean is read once and kept: a rating added meanwhile
    moves it only once that time has passed (the rated provider's own counts move at once)."""
    customer, provider_ids = rated_world
    category = providers.category_by_slug("catering")
    clock = [1000.0]
    monkeypatch.setattr(reputation, "monotonic", lambda: clock[0])
    monkeypatch.setitem(app.config, "RATING_MEAN_SECONDS", 60)
    app.extensions.pop("platform_mean", None)
    try:
        _rate_a_done_job(customer, category, provider_ids[0], 5)
        db.session.commit()
        assert reputation.platform_mean() == 5.0
        _rate_a_done_job(customer, category, provider_ids[1], 1)
        db.session.commit()
        clock[0] += 59
        assert reputation.platform_mean() == 5.0  # kept
        assert reputation.for_providers([provider_ids[1]])[provider_ids[1]]["count"] == 1
        clock[0] += 1.5
        assert reputation.platform_mean() == 3.0  # read again, and kept from now
        _rate_a_done_job(customer, category, provider_ids[2], 4)
        db.session.commit()
        assert reputation.platform_mean() == 3.0
        monkeypatch.setitem(app.config, "RATING_MEAN_SECONDS", 0)
        clock[0] += 60  # the kept value has expired; from now on none is kept
        assert reputation.platform_mean() == pytest.approx(10 / 3)
        _rate_a_done_job(customer, category, provider_ids[2], 5)
        db.session.commit()
        assert reputation.platform_mean() == pytest.approx(15 / 4)  # not kept
    finally:
        app.extensions.pop("platform_mean", None)
