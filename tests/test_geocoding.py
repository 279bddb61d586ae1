"""Place names to coordinates: the offline gazetteer (the embedded default), the geocode API,
needs posted with ``location: {query}``, and geopy's Nominatim path exercised for real against a
fake Nominatim HTTP server on localhost."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask_migrate
import pytest
from conftest import AUSTIN, error_of, make_test_app, need_data
from sqlalchemy import func, select

from marketplace.accounts import services as accounts
from marketplace.extensions import db
from marketplace.geocoding import GeocoderUnavailable, Place
from marketplace.geocoding import services as geocoding
from marketplace.geocoding.gazetteer import shared_gazetteer
from marketplace.geocoding.nominatim import NominatimGeocoder
from marketplace.needs.models import Need
from marketplace.notifications.models import Notification

AUSTIN_TX = (30.27, -97.74)
AUSTIN_MN = (43.67, -92.97)
MUNICH = (48.14, 11.58)
SAO_PAULO = (-23.55, -46.64)


def near(place: Any, where: tuple[float, float], tol: float = 0.05) -> bool:
    lat, lon = (place.lat, place.lon) if isinstance(place, Place) else (place["lat"], place["lon"])
    return abs(lat - where[0]) <= tol and abs(lon - where[1]) <= tol


def need_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Need)) or 0


# --- the gazetteer --------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "Austin", "Austin, TX", "Austin, US", "Austin, Texas", "austin, united states",
    "AUSTIN,TX", "  Austin  ,  tx  ", "Austin, USA", "Austin TX", "austin texas",
    "Austin United States", "Austin Texas US",
])
def test_austin_in_every_spelling_is_austin_texas_first(query):
    found = shared_gazetteer().search(query)
    assert found, query
    best = found[0]
    assert near(best, AUSTIN_TX), best
    assert best.label == "Austin, TX, US"
    assert best.country_code == "US" and best.source == "gazetteer"


@pytest.mark.parametrize("query", ["Austin, MN", "Austin, Minnesota", "austin, mn, us",
                                   "Austin MN", "Austin Minnesota"])
def test_a_state_qualifier_picks_that_state(query):
    found = shared_gazetteer().search(query)
    assert found and near(found[0], AUSTIN_MN), found
    assert found[0].label == "Austin, MN, US"
    assert all(not near(p, AUSTIN_TX) for p in found)  # the qualifier filters, not just ranks


def test_unqualified_name_ranks_exact_matches_by_population():
    found = shared_gazetteer().search("Austin", 5)
    assert near(found[0], AUSTIN_TX)
    exact = [p for p in found if p.label.split(",")[0] == "Austin"]
    populations = [p.population for p in exact]
    assert populations == sorted(populations, reverse=True)
    assert any(near(p, AUSTIN_MN) for p in exact)
    # exact name matches come before names that merely start with the query
    first_prefix = next(i for i, p in enumerate(found) if p.label.split(",")[0] != "Austin")
    assert all(p.label.split(",")[0] == "Austin" for p in found[:first_prefix])


@pytest.mark.parametrize(("query", "where", "label"), [
    ("sao paulo", SAO_PAULO, "São Paulo, BR"),
    ("SÃO PAULO", SAO_PAULO, "São Paulo, BR"),
    ("São Paulo", SAO_PAULO, "São Paulo, BR"),
    ("MÜNCHEN", MUNICH, "Munich, DE"),
    ("münchen", MUNICH, "Munich, DE"),
    ("munich", MUNICH, "Munich, DE"),
    ("Munich, Germany", MUNICH, "Munich, DE"),
])
def test_case_and_accents_are_folded(query, where, label):
    found = shared_gazetteer().search(query)
    assert found and near(found[0], where), found
    assert found[0].label == label


@pytest.mark.parametrize("query", ["Xyzzyqwv", "Austin, Narnia", "Munich, US", ",", " , TX", "",
                                   "Munich US", "Xyzzyqwv TX", "TX"])
def test_unknown_places_and_impossible_qualifiers_find_nothing(query):
    assert shared_gazetteer().search(query) == []


@pytest.mark.parametrize("query, label", [
    ("Kansas City Missouri", "Kansas City, MO, US"), ("Kansas City KS", "Kansas City, KS, US"),
    ("New York NY", "New York City, NY, US"), ("Paris France", "Paris, FR"),
    ("Washington", "Washington, DC, US"),  # a city's own name is never split
])
def test_without_a_comma_trailing_words_qualify_only_when_the_whole_is_no_city(query, label):
    found = shared_gazetteer().search(query)
    assert found and found[0].label == label, found[:2]


def test_limit_bounds_the_candidates():
    assert len(shared_gazetteer().search("Springfield", 3)) == 3
    assert len(shared_gazetteer().search("Springfield", 1)) == 1


# --- services -------------------------------------------------------------------------------


def test_resolve_returns_the_best_place_and_unknown_is_422_on_location_query(app):
    assert near(geocoding.resolve("Austin, TX"), AUSTIN_TX)
    with pytest.raises(geocoding.Invalid) as info:
        geocoding.resolve("Xyzzyqwv")
    assert set(info.value.fields) == {"location"}
    assert set(info.value.fields["location"]) == {"query"}
    assert info.value.fields["location"]["query"]


# --- GET /api/v1/geocode --------------------------------------------------------------------


@pytest.mark.parametrize("query", ["Austin", "Austin, TX", "Austin, US", "Austin, Texas"])
def test_geocode_api_puts_austin_texas_first(make_user, query):
    r = make_user().get("/api/v1/geocode", query_string={"q": query})
    assert r.status_code == 200, r.get_json()
    items = r.get_json()["items"]
    assert items and near(items[0], AUSTIN_TX)
    assert items[0]["label"] == "Austin, TX, US"
    assert items[0]["country_code"] == "US" and items[0]["source"] == "gazetteer"
    assert isinstance(items[0]["population"], int) and items[0]["population"] > 500_000


def test_geocode_api_minnesota_and_folding(make_user):
    person = make_user()
    mn = person.get("/api/v1/geocode", query_string={"q": "Austin, MN"}).get_json()["items"]
    assert near(mn[0], AUSTIN_MN)
    de = person.get("/api/v1/geocode", query_string={"q": "MÜNCHEN"}).get_json()["items"]
    assert near(de[0], MUNICH) and de[0]["label"] == "Munich, DE"
    br = person.get("/api/v1/geocode", query_string={"q": "sao paulo"}).get_json()["items"]
    assert near(br[0], SAO_PAULO)


def test_geocode_api_limit(make_user):
    person = make_user()
    r = person.get("/api/v1/geocode", query_string={"q": "Springfield", "limit": 2})
    assert r.status_code == 200 and len(r.get_json()["items"]) == 2
    for bad in (0, 11, "x"):
        r = person.get("/api/v1/geocode", query_string={"q": "Springfield", "limit": bad})
        assert r.status_code == 422
        assert set(error_of(r)["fields"]) == {"limit"}


@pytest.mark.parametrize("query", ["Xyzzyqwv", "Austin, Narnia", ",,,"])
def test_geocode_api_unknown_place_is_422_naming_q(make_user, query):
    r = make_user().get("/api/v1/geocode", query_string={"q": query})
    assert r.status_code == 422
    error = error_of(r)
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"q"} and error["fields"]["q"]


@pytest.mark.parametrize("args", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 201}])
def test_geocode_api_missing_or_bad_q_is_422_naming_q(make_user, args):
    r = make_user().get("/api/v1/geocode", query_string=args)
    assert r.status_code == 422
    assert "q" in error_of(r)["fields"]


def test_geocode_api_needs_a_token(client):
    r = client.get("/api/v1/geocode", query_string={"q": "Austin"})
    assert r.status_code == 401
    error_of(r)


# --- POST /api/v1/needs with location {query} ----------------------------------------------


def test_need_posted_by_place_name_gets_its_coordinates_and_label(make_user, make_provider):
    customer = make_user()
    pro = make_provider(base=AUSTIN)
    r = customer.post("/api/v1/needs", json=need_data(location={"query": "Austin, TX"}))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["place"] == "Austin, TX, US"
    assert near(body["location"], AUSTIN_TX) and body["location"]["approximate"] is False
    need = db.session.get(Need, body["id"])
    best = shared_gazetteer().search("Austin, TX")[0]
    assert (need.lat, need.lon) == (best.lat, best.lon)
    assert need.place == "Austin, TX, US"
    # it is matched like any other need: the provider in Austin is told
    told = db.session.scalars(select(Notification).where(
        Notification.user_id == pro.user.id, Notification.type == "need.matched")).all()
    assert [n.data["need"]["id"] for n in told] == [need.id]


@pytest.mark.parametrize("location", [{"query": "Austin, MN"}, {"lat": 43.6712, "lon": -92.9801}])
def test_a_typed_place_label_is_never_stored_the_geocoders_name_of_the_cell_is(make_user,
                                                                                 location):
    """Every matched provider reads ``place``: typed, it could carry a street address."""
    r = make_user().post("/api/v1/needs", json=need_data(location=location,
                                                         place="742 Evergreen Terrace"))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["place"] == "Austin, MN, US"
    assert db.session.get(Need, body["id"]).place == "Austin, MN, US"
    assert near(body["location"], AUSTIN_MN)


def test_a_place_asked_for_where_the_geocoder_names_nothing_is_422_naming_place(make_user):
    before = need_count()
    r = make_user().post("/api/v1/needs", json=need_data(location={"lat": 0.0, "lon": -140.0},
                                                         place="My boat"))
    assert r.status_code == 422
    assert set(error_of(r)["fields"]) == {"place"}
    assert need_count() == before


def test_the_cell_label_is_asked_of_the_cell_centre_not_the_point(app):
    """Two points in one grid cell get the same label: it says no more than the cell."""
    from marketplace.geo import grid_cell_centre

    asked: list[tuple[float, float]] = []
    real = shared_gazetteer()

    class Recording:
        def search(self, query: str, limit: int = 5) -> list[Place]:
            return real.search(query, limit)

        def reverse(self, lat: float, lon: float) -> Place | None:
            asked.append((lat, lon))
            return real.reverse(lat, lon)

    app.extensions["geocoder"] = Recording()
    try:
        point = (30.2712345, -97.7398765)
        assert geocoding.label_of_cell(*point) == "Austin, TX, US"
        assert asked == [tuple(grid_cell_centre(*point))]
    finally:
        app.extensions.pop("geocoder")


def test_need_with_unknown_place_is_422_on_location_query_and_nothing_is_created(make_user):
    customer = make_user()
    before = need_count()
    r = customer.post("/api/v1/needs", json=need_data(location={"query": "Xyzzyqwv"}))
    assert r.status_code == 422
    error = error_of(r)
    assert set(error["fields"]) == {"location"}
    assert set(error["fields"]["location"]) == {"query"}
    assert isinstance(error["fields"]["location"]["query"], list)
    assert error["fields"]["location"]["query"]
    assert need_count() == before
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


@pytest.mark.parametrize("location", [
    {"query": "Austin, TX", "lat": AUSTIN[0]},
    {"query": "Austin, TX", "lon": AUSTIN[1]},
    {"query": "Austin, TX", "lat": AUSTIN[0], "lon": AUSTIN[1]},
])
def test_query_together_with_coordinates_is_422(make_user, location):
    before = need_count()
    r = make_user().post("/api/v1/needs", json=need_data(location=location))
    assert r.status_code == 422
    assert "location" in error_of(r)["fields"]
    assert need_count() == before


@pytest.mark.parametrize(("location", "missing"), [
    ({"lon": AUSTIN[1]}, {"lat"}),
    ({"lat": AUSTIN[0]}, {"lon"}),
    ({}, {"lat", "lon"}),
])
def test_missing_coordinate_without_query_names_it(make_user, location, missing):
    before = need_count()
    r = make_user().post("/api/v1/needs", json=need_data(location=location))
    assert r.status_code == 422
    error = error_of(r)
    assert set(error["fields"]) == {"location"}
    assert set(error["fields"]["location"]) == missing
    for name in missing:
        assert f"location.{name}" in error["message"]
    assert need_count() == before


@pytest.mark.parametrize("query", ["", "   ", "x" * 201, 42, None])
def test_bad_query_values_are_422_on_location_query(make_user, query):
    r = make_user().post("/api/v1/needs", json=need_data(location={"query": query}))
    assert r.status_code == 422
    fields = error_of(r)["fields"]
    assert "query" in fields["location"]


# --- Nominatim through geopy, against a fake server on localhost ----------------------------


@dataclass
class Hit:
    at: float  # time.monotonic() when the server read the request
    path: str
    params: dict[str, list[str]]
    user_agent: str | None


def nominatim_place(name: str, lat: float, lon: float, country_code: str | None = "us",
                    **extra: Any) -> dict[str, Any]:
    """One result in Nominatim's /search?format=json shape (lat/lon are strings there)."""
    place: dict[str, Any] = {
        "place_id": abs(hash(name)) % 10**8, "licence": "Data (c) OpenStreetMap contributors",
        "osm_type": "relation", "osm_id": 113314, "lat": str(lat), "lon": str(lon),
        "class": "boundary", "type": "administrative", "place_rank": 16, "importance": 0.7,
        "addresstype": "city", "name": name.split(",")[0], "display_name": name,
        "boundingbox": [str(lat - 0.1), str(lat + 0.1), str(lon - 0.1), str(lon + 0.1)],
    }
    if country_code is not None:
        place["address"] = {"city": name.split(",")[0], "country_code": country_code}
    place.update(extra)
    return place


class FakeNominatim:
    """A tiny Nominatim: GET /search answers from ``places`` (by lower-cased q), or with
    ``fail_with`` as the HTTP status; every request is recorded with its arrival time."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.places: dict[str, list[dict[str, Any]]] = {}
        self.reverse_answer: dict[str, Any] = {"error": "Unable to geocode"}  # GET /reverse
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                arrived = time.monotonic()
                url = urlsplit(self.path)
                params = parse_qs(url.query)
                with outer._lock:
                    outer.hits.append(Hit(arrived, url.path, params,
                                          self.headers.get("User-Agent")))
                    status = outer.fail_with or (
                        200 if url.path in ("/search", "/reverse") else 404)
                    q = (params.get("q") or [""])[0].casefold()
                    body: Any = outer.places.get(q, []) if status == 200 else {"error": "boom"}
                    if url.path == "/reverse" and status == 200:
                        body = outer.reverse_answer
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # shutdown() waits for the loop to look again: every 0.5 s by default, 10 ms here.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                        daemon=True)

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def searches(self) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == "/search"]

    def __enter__(self) -> FakeNominatim:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def nominatim(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNominatim]:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with FakeNominatim() as fake:
        fake.places["austin, tx"] = [
            nominatim_place("Austin, Travis County, Texas, United States", 30.2711286,
                            -97.7436995),
            nominatim_place("Austin, Mower County, Minnesota, United States", 43.6666296,
                            -92.9746367),
        ]
        fake.places["dallas"] = [nominatim_place("Dallas, Texas, United States", 32.7763,
                                                 -96.7969)]
        fake.places["houston"] = [nominatim_place("Houston, Texas, United States", 29.7589,
                                                  -95.3677)]
        fake.places["somewhere"] = [nominatim_place("Somewhere", 1.5, 2.5, country_code=None)]
        yield fake


def make_nominatim(fake: FakeNominatim, user_agent: str = "test-agent") -> NominatimGeocoder:
    return NominatimGeocoder(user_agent=user_agent, domain=fake.domain, scheme="http")


def shorten_error_wait(geocoder: NominatimGeocoder) -> None:
    """geopy's RateLimiter waits ``error_wait_seconds`` (default 5 s) before its one retry.
    The retry itself still happens; only the pause is cut to the 1 s request spacing so these
    tests stay quick."""
    geocoder._geocode.error_wait_seconds = 1.0


def test_nominatim_results_become_places(nominatim):
    geocoder = make_nominatim(nominatim)
    found = geocoder.search("Austin, TX", 5)
    assert found == [
        Place(label="Austin, Travis County, Texas, United States", lat=30.2711286,
              lon=-97.7436995, country_code="US", population=None, source="nominatim"),
        Place(label="Austin, Mower County, Minnesota, United States", lat=43.6666296,
              lon=-92.9746367, country_code="US", population=None, source="nominatim"),
    ]
    [hit] = nominatim.searches()
    assert hit.params["q"] == ["Austin, TX"]
    assert hit.params["format"] == ["json"]
    assert hit.params["limit"] == ["5"]
    assert hit.params["addressdetails"] == ["1"]


def test_nominatim_result_without_address_has_no_country(nominatim):
    [place] = make_nominatim(nominatim).search("Somewhere")
    assert place == Place(label="Somewhere", lat=1.5, lon=2.5, country_code=None,
                          population=None, source="nominatim")


def test_nominatim_no_result_is_an_empty_list(nominatim):
    assert make_nominatim(nominatim).search("Xyzzyqwv") == []
    assert len(nominatim.searches()) == 1


def test_nominatim_sends_the_configured_user_agent(nominatim):
    make_nominatim(nominatim, user_agent="test-agent").search("Dallas")
    [hit] = nominatim.searches()
    assert hit.user_agent == "test-agent"


@pytest.mark.clock
def test_nominatim_repeated_queries_are_served_from_the_cache(nominatim):
    geocoder = make_nominatim(nominatim)
    first = geocoder.search("Austin, TX")
    started = time.monotonic()
    again = [geocoder.search("Austin, TX"), geocoder.search("  austin,   TX "),
             geocoder.search("AUSTIN, TX")]
    elapsed = time.monotonic() - started
    assert all(result == first for result in again)
    assert len(nominatim.searches()) == 1
    # answered from memory, so not held back by the 1 request/s limiter either
    assert elapsed < 0.5
    # a different limit is a different question
    geocoder.search("Austin, TX", 1)
    assert len(nominatim.searches()) == 2


@pytest.mark.clock
def test_nominatim_requests_are_at_least_one_second_apart(nominatim):
    geocoder = make_nominatim(nominatim)
    started = []
    for query in ("Austin, TX", "Dallas", "Houston"):
        started.append(time.monotonic())
        assert geocoder.search(query)
    hits = nominatim.searches()
    assert [h.params["q"][0] for h in hits] == ["Austin, TX", "Dallas", "Houston"]
    for i in (1, 2):
        # Exact bound, no allowance needed: request i can only be sent >= 1 s after request
        # i-1 was sent, which was no earlier than call i-1 began. (Unlimited, this is ~ms.)
        assert hits[i].at - started[i - 1] >= 1.0, (i, hits[i].at - started[i - 1])
        # and as the server saw it (arrival times carry a little send-latency jitter)
        assert hits[i].at - hits[i - 1].at >= 0.9, (i, hits[i].at - hits[i - 1].at)


@pytest.mark.clock
@pytest.mark.parametrize("status", [500, 502])
def test_nominatim_server_error_is_geocoder_unavailable_and_not_cached(nominatim, status):
    geocoder = make_nominatim(nominatim)
    shorten_error_wait(geocoder)
    nominatim.fail_with = status
    with pytest.raises(GeocoderUnavailable):
        geocoder.search("Dallas")
    assert len(nominatim.searches()) == 2  # geopy's RateLimiter retried once
    nominatim.fail_with = None
    [place] = geocoder.search("Dallas")  # the failure was not cached as "no such place"
    assert place.label == "Dallas, Texas, United States"
    assert len(nominatim.searches()) == 3


@pytest.mark.clock
def test_nominatim_failure_through_the_app_is_503(app, make_user, nominatim):
    """The app's geocoder swapped for a Nominatim one pointing at the fake server."""
    geocoder = make_nominatim(nominatim)
    shorten_error_wait(geocoder)
    previous = app.extensions.get("geocoder")
    app.extensions["geocoder"] = geocoder
    try:
        person = make_user()
        r = person.get("/api/v1/geocode", query_string={"q": "Dallas"})
        assert r.status_code == 200
        assert r.get_json()["items"][0]["source"] == "nominatim"
        nominatim.fail_with = 500
        before = need_count()
        r = person.post("/api/v1/needs", json=need_data(location={"query": "Houston"}))
        assert r.status_code == 503
        assert error_of(r)["code"] == "service_unavailable"
        assert r.headers["Retry-After"] == str(app.config["UNAVAILABLE_RETRY_AFTER"])
        assert need_count() == before
    finally:
        if previous is None:
            app.extensions.pop("geocoder", None)
        else:
            app.extensions["geocoder"] = previous


@pytest.mark.clock
def test_with_redis_every_process_shares_one_request_per_second(nominatim, redis_url):
    """Two geocoders stand for two server processes: each has its own geopy RateLimiter,
    so only the Redis gate keeps their requests together at 1/s."""
    import redis

    redis.Redis.from_url(redis_url).delete(f"nominatim-gate:{nominatim.domain}")
    a = NominatimGeocoder("test-agent", nominatim.domain, "http", redis_url=redis_url)
    b = NominatimGeocoder("test-agent", nominatim.domain, "http", redis_url=redis_url)
    alone = NominatimGeocoder("test-agent", nominatim.domain, "http")  # no gate: own pace
    started = []
    for geocoder, query in ((a, "Austin, TX"), (b, "Dallas"), (a, "Houston")):
        started.append(time.monotonic())
        assert geocoder.search(query)
    hits = nominatim.searches()
    assert [h.params["q"][0] for h in hits] == ["Austin, TX", "Dallas", "Houston"]
    for i in (1, 2):  # same exact bound as within one process
        assert hits[i].at - started[i - 1] >= 1.0, (i, hits[i].at - started[i - 1])
    before = time.monotonic()
    assert alone.search("Somewhere")  # ungated and its own first call: not held back
    assert nominatim.searches()[-1].at - before < 0.5


def test_an_unreachable_gate_is_geocoder_unavailable_not_an_unlimited_request(nominatim):
    geocoder = NominatimGeocoder("test-agent", nominatim.domain, "http",
                                 redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(GeocoderUnavailable):
        geocoder.search("Dallas")
    assert nominatim.searches() == []


@pytest.mark.clock
def test_geocoder_nominatim_configuration_end_to_end(nominatim, tmp_path):
    """GEOCODER=nominatim builds geopy's Nominatim from the NOMINATIM_* settings: the API then
    asks that server with that user agent, and answers 503 with the error shape when it fails."""
    app = make_test_app(
        f"sqlite:///{tmp_path / 'nominatim.sqlite3'}",
        GEOCODER="nominatim", NOMINATIM_USER_AGENT="configured-agent/2.0",
        NOMINATIM_DOMAIN=nominatim.domain, NOMINATIM_SCHEME="http",
    )
    with app.app_context():
        flask_migrate.upgrade()
        try:
            from marketplace.geocoding import geocoder

            built = geocoder()
            assert isinstance(built, NominatimGeocoder)
            assert geocoder() is built  # one per app
            shorten_error_wait(built)
            user = accounts.register("nominatim@example.com", "correct horse battery", "N")
            _token, raw = accounts.create_token(user, "tests")
            client = app.test_client()
            auth = {"Authorization": f"Bearer {raw}"}

            r = client.get("/api/v1/geocode", query_string={"q": "Austin, TX"}, headers=auth)
            assert r.status_code == 200, r.get_json()
            items = r.get_json()["items"]
            assert [i["label"] for i in items] == [
                "Austin, Travis County, Texas, United States",
                "Austin, Mower County, Minnesota, United States",
            ]
            assert items[0]["source"] == "nominatim" and items[0]["country_code"] == "US"
            assert [h.user_agent for h in nominatim.searches()] == ["configured-agent/2.0"]

            r = client.get("/api/v1/geocode", query_string={"q": "Xyzzyqwv"}, headers=auth)
            assert r.status_code == 422
            assert set(error_of(r)["fields"]) == {"q"}

            nominatim.fail_with = 500
            r = client.get("/api/v1/geocode", query_string={"q": "Dallas"}, headers=auth)
            assert r.status_code == 503
            error = error_of(r)
            assert error["code"] == "service_unavailable"
            assert "fields" not in error
        finally:
            db.session.remove()
            db.engine.dispose()


def test_nominatim_reverse_asks_for_a_town_and_labels_the_cell_with_it(app, make_user, nominatim):
    """A need's place label from Nominatim is its zoom-10 (town) name of the cell's centre —
    never a street — and no name there is a 422 naming place."""
    from marketplace.geo import grid_cell_centre

    app.extensions["geocoder"] = make_nominatim(nominatim)
    try:
        point = (30.2712345, -97.7398765)
        nominatim.reverse_answer = nominatim_place("Austin, Travis County, Texas, United States",
                                                   30.2711286, -97.7436995)
        r = make_user().post("/api/v1/needs", json=need_data(
            location={"lat": point[0], "lon": point[1]}, place="742 Evergreen Terrace"))
        assert r.status_code == 201, r.get_json()
        assert r.get_json()["place"] == "Austin, Travis County, Texas, United States"
        [hit] = [h for h in nominatim.hits if h.path == "/reverse"]
        cell = grid_cell_centre(*point)
        assert (float(hit.params["lat"][0]), float(hit.params["lon"][0])) == (cell.lat, cell.lon)
        assert hit.params["zoom"] == ["10"]
        nominatim.reverse_answer = {"error": "Unable to geocode"}
        r = make_user().post("/api/v1/needs", json=need_data(location={"lat": 0.5, "lon": -140.5},
                                                             place="My boat"))
        assert r.status_code == 422 and set(error_of(r)["fields"]) == {"place"}
    finally:
        app.extensions.pop("geocoder")


def test_naming_a_cell_does_not_wait_for_the_name_indexes() -> None:
    """Pages name cells (``reverse``) on a worker's event loop: that needs only the cities by
    square, not the folded name indexes a search builds (seconds of CPU)."""
    from marketplace.geocoding.gazetteer import Gazetteer

    gazetteer = Gazetteer()
    assert gazetteer.reverse(30.2672, -97.7431).label == "Austin, TX, US"
    assert not gazetteer._loaded  # the name indexes are still to be built
    assert gazetteer.search("Austin, TX")[0].label == "Austin, TX, US"
    assert gazetteer._loaded
