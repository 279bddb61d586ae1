"""The web app in a real browser: headless Debian Chromium driven by playwright, against a real
server process (``live.server``). Shared by every browser test module; the fixtures that start
Chromium and the server are in ``conftest.py`` (``chromium``, ``base_url``)."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

from conftest import AUSTIN, ROOT
from live import Api

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts" / "screenshots"
# Keep the browser off the network: it only ever talks to the local server.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
               "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
PASSWORD = "live-password-1"


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


class Person:
    """A browser context signed in as one user, recording every console error."""

    def __init__(self, browser: Any, base: str, api: Api, viewport: dict[str, int] = PHONE,
                 **context: Any) -> None:
        self.api = api
        self.base = base
        self.context = browser.new_context(viewport=viewport, base_url=base, **context)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto("/signin")
        self.page.get_by_label("Email").fill(api.user["email"])
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.locator("#bell")).to_be_visible()

    def live(self) -> None:
        """Wait until the page's Socket.IO connection is up (an event, not a sleep)."""
        self.page.wait_for_function(
            "() => window.Nearby && window.Nearby.socket && window.Nearby.socket.connected")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        size = "phone" if self.page.viewport_size["width"] < 600 else "desktop"
        path = str(ARTIFACTS / f"{name}-{size}.png")
        try:
            self.page.screenshot(path=path, full_page=True)
        except Exception as exc:
            # Chromium on a busy machine sometimes has no frame to give ("Unable to capture
            # screenshot"): the picture is an artifact, so take it again once a frame is drawn
            if "Unable to capture screenshot" not in str(exc):
                raise
            self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            self.page.screenshot(path=path, full_page=True)

    def close(self) -> None:
        self.context.close()


def make_provider(base: str, where: tuple[float, float], name: str,
                  categories: tuple[str, ...] = ("catering",), radius_km: float = 30) -> Api:
    """A provider account on the live server, set up through the API."""
    slug = name.lower().replace(" ", "-")
    api = Api(base, f"{slug}-{uuid.uuid4().hex[:6]}@example.com", name=name)
    r = api.call("PUT", "/me/provider", json={
        "handle": f"{name.lower().split()[0]}-{uuid.uuid4().hex[:6]}", "display_name": name,
        "bio": "Twenty years of weddings and office lunches.", "categories": list(categories),
        "base": {"lat": where[0], "lon": where[1]}, "radius_km": radius_km, "active": True})
    assert r.status_code == 200, r.text
    return api


def post_need(api: Api, title: str, **extra: Any) -> dict[str, Any]:
    """A catering need in Austin through the API (``extra``: more or other fields)."""
    r = api.call("POST", "/needs", json={
        "title": title, "category": "catering", "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 20, "budget": {"amount": 40000, "currency": "USD"}, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def offer(api: Api, need_id: int, amount: int) -> dict[str, Any]:
    r = api.call("POST", f"/needs/{need_id}/offers",
                 json={"price": {"amount": amount, "currency": "USD"}, "message": "Happy to"})
    assert r.status_code == 201, r.text
    return r.json()
