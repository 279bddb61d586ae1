"""What a browser loads comes compressed when it asks (Accept-Encoding): pages, CSS and JS;
the JSON API does not, so its ETags stay the revisions clients send back in If-Match."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ["/static/vendor/socket.io/socket.io.min.js", "/static/app.css", "/static/app.js"]


def decoded(encoding: str, body: bytes) -> bytes:
    return {"gzip": gzip.decompress, "br": brotli.decompress}[encoding](body)


@pytest.mark.parametrize("encoding", ["gzip", "br"])
@pytest.mark.parametrize("path", ASSETS)
def test_assets_come_compressed_as_asked_and_decode_to_the_file(client, path, encoding) -> None:
    r = client.get(path, headers={"Accept-Encoding": encoding})
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in r.headers["Vary"]
    original = (ROOT / path.lstrip("/")).read_bytes()
    assert decoded(encoding, r.get_data()) == original
    assert int(r.headers["Content-Length"]) == len(r.get_data()) < len(original) / 2


def test_a_client_that_asks_for_nothing_gets_the_file_as_is(client) -> None:
    path = ASSETS[0]
    r = client.get(path, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in r.headers
    assert r.get_data() == (ROOT / path.lstrip("/")).read_bytes()


def test_an_unchanged_compressed_asset_is_a_304(client) -> None:
    first = client.get(ASSETS[1], headers={"Accept-Encoding": "gzip"})
    etag = first.headers["ETag"]
    again = client.get(ASSETS[1], headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""


def test_pages_come_compressed(client) -> None:
    for path in ("/", "/signin"):
        r = client.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "br"
        assert b"</html>" in decoded("br", r.get_data())


def test_the_api_is_not_compressed_and_its_etag_round_trips(make_user, make_need, make_offer,
                                                             make_provider) -> None:
    customer, pro = make_user(), make_provider()
    offer = make_offer(make_need(customer), pro)
    url = f"/api/v1/offers/{offer.id}"
    asking = {"Accept-Encoding": "gzip, br"}  # what python-requests and browsers send
    read = pro.get(url, headers=asking)
    assert "Content-Encoding" not in read.headers and read.headers["ETag"] == '"1-pending"'
    revised = pro.patch(url, json={"message": "With dessert"},
                        headers={**asking, "If-Match": read.headers["ETag"]})
    assert revised.status_code == 200, revised.get_json()
