"""A client generated from the live OpenAPI document with openapi-python-client (what a
third-party developer would do) runs the core loop: sign up, take a token, become a provider,
post a need, offer, list offers, accept, complete, rate. Its errors are typed: a 404 and a 409
arrive as different documented classes, and with ``raise_on_unexpected_status`` any status the
document does not list for an operation would raise.

The client talks to the app in-process (httpx's WSGI transport): no server process is needed,
and the generation itself takes about a second."""

from __future__ import annotations

import importlib
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

_packages = itertools.count(1)


@pytest.fixture
def generated(app: Flask, tmp_path: Path) -> Any:
    """The generated package, imported (a fresh name each time: a module is imported once)."""
    spec = app.test_client().get("/api/v1/openapi.json")
    assert spec.status_code == 200
    (tmp_path / "openapi.json").write_text(json.dumps(spec.get_json()))
    (tmp_path / "config.yaml").write_text("post_hooks: []\n")  # no formatter run: not needed
    name = f"marketplace_client_{next(_packages)}"
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate",
         "--path", str(tmp_path / "openapi.json"), "--meta", "none",
         "--output-path", str(tmp_path / name), "--config", str(tmp_path / "config.yaml")],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation must make it into the client (the generator skips what it cannot read,
    # with a warning naming it).
    assert "Unable to parse" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(name), name
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def test_the_generated_client_runs_the_core_loop_with_typed_errors(app: Flask,
                                                                    generated: Any) -> None:
    package, name = generated

    def mod(path: str) -> Any:
        return importlib.import_module(f"{name}.{path}")

    models = mod("models")
    transport = httpx.WSGITransport(app=app)

    def anonymous() -> Any:
        return package.Client(base_url="http://localhost", raise_on_unexpected_status=True,
                              httpx_args={"transport": transport})

    def signed_up(email: str, person: str) -> Any:
        password = "correct horse battery"
        made = mod("api.accounts_api.create_user").sync_detailed(
            client=anonymous(), body=models.Register(email=email, password=password, name=person))
        assert made.status_code == 202 and isinstance(made.parsed, models.CheckMail)
        token = mod("api.accounts_api.create_token").sync(
            client=anonymous(), body=models.Credentials(email=email, password=password))
        assert isinstance(token, models.NewToken) and token.token
        return package.AuthenticatedClient(
            base_url="http://localhost", token=token.token, raise_on_unexpected_status=True,
            httpx_args={"transport": transport})

    customer = signed_up("cora@example.com", "Cora Customer")
    pro = signed_up("paul@example.com", "Paul Provider")

    me = mod("api.accounts_api.get_me").sync(client=customer)
    assert isinstance(me, models.Me) and me.provider is None  # typed: None or ProviderOut

    profile = mod("api.providers_api.save_my_provider").sync(client=pro, body=models.ProviderIn(
        handle="paul-caters", display_name="Paul Caters",
        categories=[models.ProviderInCategoriesItem.CATERING],
        base=models.Point(lat=30.2672, lon=-97.7431), radius_km=25))
    assert isinstance(profile, models.ProviderOut) and profile.handle == "paul-caters"
    assert isinstance(mod("api.accounts_api.get_me").sync(client=pro).provider,
                      models.ProviderOut)

    need = mod("api.needs_api.create_need").sync(client=customer, body=models.NeedIn(
        title="Tacos for 40", category=models.NeedInCategory.CATERING,
        location=models.LocationIn(lat=30.2672, lon=-97.7431), radius_km=15,
        budget=models.Money(amount=60000, currency=models.MoneyCurrency.USD)))
    assert isinstance(need, models.NeedOut) and need.status == models.NeedOutStatus.OPEN

    feed = mod("api.needs_api.get_feed").sync(client=pro)
    assert [n.id for n in feed.items] == [need.id]

    offer = mod("api.offers_api.create_offer").sync(
        need_id=need.id, client=pro,
        body=models.OfferIn(price=models.Money(amount=55000, currency=models.MoneyCurrency.USD),
                            message="Happy to"))
    assert isinstance(offer, models.OfferOut) and offer.revision == 1

    listed = mod("api.offers_api.list_need_offers").sync(need_id=need.id, client=customer)
    assert isinstance(listed, models.OfferList) and [o.id for o in listed.items] == [offer.id]

    accept = mod("api.offers_api.accept_offer")
    accepted = accept.sync(offer_id=offer.id, client=customer,
                           body=models.OfferAccept(revision=offer.revision))
    assert isinstance(accepted, models.OfferOut)
    assert accepted.status == models.OfferOutStatus.ACCEPTED

    # Typed errors: a 409 and a 404 are different documented classes.
    again = accept.sync_detailed(offer_id=offer.id, client=customer,
                                 body=models.OfferAccept(revision=offer.revision))
    assert again.status_code == 409 and isinstance(again.parsed, models.ConflictError)
    assert again.parsed.error.code.value == "conflict"
    missing = mod("api.needs_api.get_need").sync_detailed(need_id=999_999, client=customer)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.NotFoundError)
    assert not isinstance(missing.parsed, models.ConflictError)
    refused = mod("api.accounts_api.get_me").sync_detailed(client=anonymous())
    assert refused.status_code == 401 and isinstance(refused.parsed, models.UnauthorizedError)

    done = mod("api.needs_api.complete_need").sync(need_id=need.id, client=customer,
                                                    body=models.Empty())
    assert isinstance(done, models.NeedOut) and done.status == models.NeedOutStatus.COMPLETED

    rating = mod("api.ratings_api.rate_need").sync(need_id=need.id, client=customer,
                                                    body=models.RatingIn(stars=5,
                                                                         comment="Great"))
    assert isinstance(rating, models.RatingOut) and rating.provider == "paul-caters"
    public = mod("api.providers_api.get_provider").sync(handle="paul-caters", client=anonymous())
    assert isinstance(public, models.PublicProvider)
    ratings = mod("api.providers_api.list_provider_ratings").sync(handle="paul-caters",
                                                                   client=anonymous())
    assert [r.stars for r in ratings.items] == [5]
