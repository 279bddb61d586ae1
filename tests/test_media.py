"""Uploaded images, tried the way an attacker would: metadata that must not survive (GPS EXIF,
PNG text chunks), files that are not images whatever their name says, images too large in
bytes or in pixels, a provider the need was not posted to asking for its photos, and the
customer's photo before the provider was chosen."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from conftest import committed_count, error_of
from flask import Flask
from images import GPS_IFD, jpeg_with_gps, png, png_with_text, save
from pages import dom, field_error
from PIL import Image

from marketplace import lifecycle, privacy
from marketplace.extensions import db
from marketplace.media.models import Avatar, MediaBlob, NeedPhoto
from marketplace.messages import services as messages
from marketplace.moderation import services as moderation

API = "/api/v1"
DALLAS = (32.7767, -96.7970)
HTML_AS_JPEG = b"<html><script>alert(document.cookie)</script></html>\n" + b" " * 64


def _upload(person: Any, path: str, data: bytes, field: str, filename: str = "x.jpg",
            method: str = "put") -> Any:
    return getattr(person, method)(path, data={field: (io.BytesIO(data), filename)},
                                   content_type="multipart/form-data")


def _opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _huge_png_header(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    real = png((4, 4))
    chunk = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return real[:8] + ihdr + real[8 + 25:]


def test_an_avatar_comes_back_without_its_gps_exif(make_user: Any, client: Any) -> None:
    person = make_user()
    upload = jpeg_with_gps((400, 300))
    assert _opened(upload).getexif().get_ifd(GPS_IFD)  # the attack is real: GPS is in the file
    r = _upload(person, f"{API}/me/avatar", upload, "avatar", "holiday.jpg")
    assert r.status_code == 200, r.get_json()
    urls = r.get_json()
    for url, side in ((urls["url"], 256), (urls["small_url"], 64)):
        served = client.get(url)  # public: no token
        assert served.status_code == 200
        assert served.mimetype == "image/webp"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert "immutable" in served.headers["Cache-Control"]
        digest = url.rsplit("/", 1)[1]
        assert served.headers["ETag"] == f'"{digest}"'
        image = _opened(served.data)
        assert image.size == (side, side)
        assert dict(image.getexif()) == {} and not image.getexif().get_ifd(GPS_IFD)
        assert not {"exif", "xmp", "icc_profile"} & set(image.info)
        assert b"SpyCam" not in served.data
        again = client.get(url, headers={"If-None-Match": served.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
    assert person.delete(f"{API}/me/avatar").status_code == 204
    assert client.get(urls["url"]).status_code == 404
    assert committed_count(MediaBlob) == 0  # nothing else used them: gone with the avatar


def test_a_png_loses_its_text_chunk_and_keeps_its_transparency(make_user: Any,
                                                               make_need: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    upload = png_with_text()
    assert _opened(upload).info["Comment"]
    r = customer.post(f"{API}/needs/{need.id}/photos", data=upload, content_type="image/png")
    assert r.status_code == 201, r.get_json()
    photo = r.get_json()
    served = customer.get(photo["url"])
    assert served.status_code == 200 and served.mimetype == "image/webp"
    image = _opened(served.data)
    assert "Comment" not in image.info and b"Congress" not in served.data
    assert image.mode == "RGBA" and image.size == (photo["width"], photo["height"]) == (20, 20)
    shown = customer.get(f"{API}/needs/{need.id}").get_json()["photos"]
    assert shown == [photo]


def test_html_named_jpg_is_refused_and_a_polyglot_loses_its_payload(make_user: Any) -> None:
    person = make_user()
    for body, kwargs in ((HTML_AS_JPEG, {}), (b"GIF89a" + HTML_AS_JPEG, {}),
                         (save(Image.new("RGB", (8, 8)), "GIF"), {}), (b"", {})):
        r = _upload(person, f"{API}/me/avatar", body, "avatar", "photo.jpg", **kwargs)
        assert r.status_code == 422, (body[:10], r.get_json())
        assert set(error_of(r)["fields"]) == {"avatar"}
        raw = person.put(f"{API}/me/avatar", data=body, content_type="image/jpeg")
        assert raw.status_code == 422 and set(error_of(raw)["fields"]) == {"avatar"}
    assert committed_count(Avatar) == committed_count(MediaBlob) == 0
    # A real JPEG with HTML after its end: taken, but only the pixels are kept.
    polyglot = save(Image.new("RGB", (30, 30), (1, 2, 3)), "JPEG") + HTML_AS_JPEG
    r = _upload(person, f"{API}/me/avatar", polyglot, "avatar", "x.html")
    assert r.status_code == 200
    served = person.get(r.get_json()["url"])
    assert b"<script" not in served.data and served.mimetype == "image/webp"
    # Not an image body at all, and a form without the field
    assert person.put(f"{API}/me/avatar", json={}).status_code == 415
    r = person.put(f"{API}/me/avatar", data={"other": (io.BytesIO(png()), "a.png")},
                   content_type="multipart/form-data")
    assert r.status_code == 422 and set(error_of(r)["fields"]) == {"avatar"}


def test_too_large_in_bytes_or_pixels_is_refused_naming_the_field(app: Flask, make_user: Any,
                                                                   make_need: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    path = f"{API}/needs/{need.id}/photos"
    bomb = _huge_png_header(100_000, 100_000)
    assert len(bomb) < 200
    r = customer.post(path, data=bomb, content_type="image/png")
    assert r.status_code == 413 and set(error_of(r)["fields"]) == {"photo"}
    assert "megapixels" in error_of(r)["message"]
    saved = dict(app.config)
    try:
        app.config.update(MEDIA_MAX_MEGAPIXELS=0.001)  # 1,000 pixels
        r = _upload(customer, path, png((40, 30)), "photo", method="post")
        assert r.status_code == 413, r.get_json()
        assert error_of(r)["fields"]["photo"] == [
            "The image is 40x30 pixels; send one of at most 0.001 megapixels."]
        app.config.update(MEDIA_MAX_MEGAPIXELS=40, MEDIA_MAX_MB=0.001)  # 1,000 bytes
        noisy = save(Image.effect_noise((64, 64), 80).convert("RGB"), "PNG")
        assert len(noisy) > 1000
        for send in (lambda: _upload(customer, path, noisy, "photo", method="post"),
                     lambda: customer.post(path, data=noisy, content_type="image/png"),
                     lambda: customer.post(path, data=noisy + b"x" * 70_000,
                                           content_type="image/png")):
            r = send()
            assert r.status_code == 413, r.get_json()
            assert set(error_of(r)["fields"]) == {"photo"}
    finally:
        app.config.update(saved)
    assert committed_count(NeedPhoto) == committed_count(MediaBlob) == 0


def test_an_animation_keeps_one_frame_and_the_photos_are_capped(app: Flask, make_user: Any,
                                                                make_need: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    frames = [Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 0, 255))]
    apng = save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(_opened(apng), "n_frames", 1) == 2
    path = f"{API}/needs/{need.id}/photos"
    r = customer.post(path, data=apng, content_type="image/png")
    assert r.status_code == 201
    image = _opened(customer.get(r.get_json()["url"]).data)
    assert getattr(image, "n_frames", 1) == 1 and image.convert("RGB").getpixel((6, 6))[0] > 200
    app.config["NEED_PHOTOS_MAX"], most = 2, app.config["NEED_PHOTOS_MAX"]
    try:
        assert customer.post(path, data=png(), content_type="image/png").status_code == 201
        r = customer.post(path, data=png(color=(1, 1, 1)), content_type="image/png")
        assert r.status_code == 409 and set(error_of(r)["fields"]) == {"photo"}
    finally:
        app.config["NEED_PHOTOS_MAX"] = most
    assert committed_count(NeedPhoto) == 2


def test_only_who_may_see_the_need_sees_its_photos(make_user: Any, make_provider: Any,
                                                   make_need: Any, make_offer: Any,
                                                   auth: Any) -> None:
    customer = make_user()
    matched, far = make_provider(), make_provider(base=DALLAS)
    other = make_user()
    need = make_need(customer)
    photo = customer.post(f"{API}/needs/{need.id}/photos", data=png(),
                          content_type="image/png").get_json()
    page_url = f"/needs/{need.id}/photos/{photo['id']}"
    for url in (photo["url"], photo["small_url"]):
        assert matched.get(url).status_code == 200
        for outsider in (far, other):
            r = outsider.get(url)
            assert r.status_code == 404 and r.mimetype == "application/json"
        assert customer.get(url + "9").status_code == 404  # another photo id
    assert matched.get(f"{API}/needs/{need.id}").get_json()["photos"] == [photo]
    for outsider in (far, other):
        web = auth.sign_in(outsider)
        assert web.get(page_url).status_code == 404
        assert web.get(page_url + "/small").status_code == 404
        r = outsider.post(f"{API}/needs/{need.id}/photos", data=png(), content_type="image/png")
        assert r.status_code == 404  # cannot even learn that the need exists
        assert outsider.delete(photo["url"]).status_code == 404
    assert auth.sign_in(matched).get(page_url).status_code == 200
    assert auth.client().get(page_url).status_code == 302  # to sign in
    # A provider who sees the need may neither add nor remove photos.
    assert matched.post(f"{API}/needs/{need.id}/photos", data=png(),
                        content_type="image/png").status_code == 403
    assert matched.delete(photo["url"]).status_code == 403
    # A need photo's digest is not an avatar: /media/<digest> does not serve it.
    digest = db.session.get(NeedPhoto, photo["id"]).digest
    assert auth.client().get(f"/media/{digest}").status_code == 404
    # Once the need takes an offer from someone else, the matched provider (no offer) loses it.
    lifecycle.accept(customer.user, make_offer(need).id)
    assert matched.get(photo["url"]).status_code == 404


def test_photos_go_when_the_need_is_hidden_or_the_customer_erased(make_user: Any,
                                                                  make_need: Any) -> None:
    customer, admin = make_user(), make_user()
    moderation.set_admin(admin.user.email, True)
    hidden, kept = make_need(customer), make_need(customer, title="Second need")
    for need in (hidden, kept):
        assert customer.post(f"{API}/needs/{need.id}/photos", data=png((500, 400), (need.id % 255, 0, 0)),
                             content_type="image/png").status_code == 201
    assert customer.put(f"{API}/me/avatar", data=png((30, 30)),
                        content_type="image/png").status_code == 200
    moderation.act(admin.user, {"action": "hide", "target_type": "need",
                                "target_id": hidden.id, "reason": "spam"})
    assert [r["need_id"] for r in _rows(NeedPhoto)] == [kept.id]
    assert committed_count(MediaBlob) == 4  # the kept photo's two sizes, the avatar's two
    privacy.erase(db.session.get(type(customer.user), customer.user.id), customer.password)
    assert committed_count(NeedPhoto) == committed_count(Avatar) == 0
    assert committed_count(MediaBlob) == 0


def _rows(model: Any) -> list[Any]:
    from conftest import committed_rows

    return committed_rows(model)


def test_the_customers_avatar_reaches_a_provider_only_once_accepted(
        make_user: Any, make_provider: Any, make_need: Any, make_offer: Any, auth: Any) -> None:
    customer = make_user("Carla Customer-Smith")
    pro, rival = make_provider(), make_provider()
    mine = customer.put(f"{API}/me/avatar", data=png((50, 50), (250, 1, 1)),
                        content_type="image/png").get_json()
    theirs = pro.put(f"{API}/me/avatar", data=png((50, 50), (1, 250, 1)),
                     content_type="image/png").get_json()
    need = make_need(customer)
    offer, other = make_offer(need, pro), make_offer(need, rival)
    for o in (offer, other):
        messages.send(customer.user, o.id, "Can you bring plates?")
    digest = mine["url"].rsplit("/", 1)[1]

    def seen_by(person: Any, offer_id: int) -> list[str]:
        """Every place the provider could find the customer's avatar: the need (API, page),
        the thread (API, page) and the provider's notifications."""
        texts = [person.get(f"{API}/needs/{need.id}").get_data(as_text=True),
                 person.get(f"{API}/offers/{offer_id}/messages").get_data(as_text=True),
                 person.get(f"{API}/notifications?after=0").get_data(as_text=True),
                 auth.sign_in(person).get(f"/needs/{need.id}").get_data(as_text=True)]
        return [t for t in texts if digest in t]

    assert seen_by(pro, offer.id) == [] and seen_by(rival, other.id) == []
    thread = pro.get(f"{API}/offers/{offer.id}/messages").get_json()["items"]
    assert thread[0]["sender_avatar"] is None and thread[0]["sender_name"] == "Carla"
    # The customer sees the provider's photo on the offer and in the thread, and their own.
    offers = customer.get(f"{API}/needs/{need.id}/offers").get_json()["items"]
    assert {o["provider"]["handle"]: o["provider"]["avatar"] for o in offers} == {
        pro.provider.handle: theirs, rival.provider.handle: None}
    assert customer.get(f"{API}/needs/{need.id}").get_json()["customer"]["avatar"] == mine
    page = dom(auth.sign_in(customer).get(f"/needs/{need.id}"))
    assert any(img.attrs.get("src") == theirs["small_url"] for img in page.find_all("img"))

    lifecycle.accept(customer.user, offer.id)
    assert len(seen_by(pro, offer.id)) == 3  # the need, the thread and the page
    assert pro.get(f"{API}/needs/{need.id}").get_json()["customer"]["avatar"] == mine
    thread = pro.get(f"{API}/offers/{offer.id}/messages").get_json()["items"]
    assert thread[0]["sender_avatar"] == mine
    assert seen_by(rival, other.id) == []  # declined: never chosen


def test_the_photo_page_uploads_and_says_what_is_wrong_next_to_the_field(
        app: Flask, make_user: Any, auth: Any) -> None:
    person = make_user("Pat Page")
    web = auth.sign_in(person)
    page = dom(web.get("/account/photo"))
    assert [s.text() for s in page.find_all(cls="initials")][:1] == ["PP"]
    r = web.post("/account/photo", data={"avatar": (io.BytesIO(HTML_AS_JPEG), "me.jpg")},
                 content_type="multipart/form-data")
    assert r.status_code == 200
    assert "not a JPEG, PNG or WebP image" in field_error(r, "avatar")
    saved = app.config["MEDIA_MAX_MB"]
    app.config["MEDIA_MAX_MB"] = 0.001
    try:
        big = save(Image.effect_noise((64, 64), 80).convert("RGB"), "PNG")
        r = web.post("/account/photo", data={"avatar": (io.BytesIO(big), "me.png")},
                     content_type="multipart/form-data")
        assert r.status_code == 200 and "over 0.001 MB" in field_error(r, "avatar")
    finally:
        app.config["MEDIA_MAX_MB"] = saved
    assert committed_count(Avatar) == 0
    r = web.post("/account/photo", data={"avatar": (io.BytesIO(jpeg_with_gps()), "me.jpg")},
                 content_type="multipart/form-data")
    assert r.status_code == 302
    avatar = _rows(Avatar)[0]
    header = dom(web.get("/account/photo")).find_all("img")
    assert f"/media/{avatar['small_digest']}" in [img.attrs.get("src") for img in header]
    assert web.post("/account/photo/remove").status_code == 302
    assert committed_count(Avatar) == committed_count(MediaBlob) == 0


def test_the_need_page_adds_and_removes_photos(make_user: Any, make_need: Any,
                                               auth: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    web = auth.sign_in(customer)
    r = web.post(f"/needs/{need.id}/photos", data={"photo": (io.BytesIO(png()), "a.png")},
                 content_type="multipart/form-data")
    assert r.status_code == 302 and r.headers["Location"].endswith("#photos")
    photo = _rows(NeedPhoto)[0]
    page = dom(web.get(f"/needs/{need.id}"))
    small = f"/needs/{need.id}/photos/{photo['id']}/small"
    assert small in [img.attrs.get("src") for img in page.find_all("img")]
    r = web.post(f"/needs/{need.id}/photos", data={"photo": (io.BytesIO(b"nope"), "a.png")},
                 content_type="multipart/form-data", follow_redirects=True)
    # next to the file input, announced with it -- not a banner at the top of the page
    assert "not a JPEG, PNG or WebP image" in field_error(r, "photo")
    assert not [f for f in dom(r).find_all("p", cls="flash") if "JPEG" in f.text()]
    assert field_error(web.get(f"/needs/{need.id}"), "photo") is None  # shown once
    assert web.post(f"/needs/{need.id}/photos/{photo['id']}/remove").status_code == 302
    assert committed_count(NeedPhoto) == 0


def test_uploads_are_rate_limited(app: Flask, make_user: Any) -> None:
    person = make_user()
    saved = app.config["RATE_LIMIT_UPLOADS"]
    app.config["RATE_LIMIT_UPLOADS"] = "2 per hour"
    try:
        statuses = [person.put(f"{API}/me/avatar", data=png(), content_type="image/png")
                    .status_code for _ in range(3)]
    finally:
        app.config["RATE_LIMIT_UPLOADS"] = saved
    assert statuses == [200, 200, 429]
