"""The web app as people use it on a phone (390x844), in a real browser against a real server:
times in the reader's own zone and relative times that keep up, amounts as the reader's locale
writes and types them, errors in people's words with a summary that takes focus, a question
before what cannot be undone (a <dialog>, or a page without JavaScript), one reputation
people understand, tab strips that fit, toasts that lead somewhere, a bell that does not count
what the page shows — and axe-core over every page with no serious or critical violation.

Expected local times are written out by hand, not computed with the code under test."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from browser import ARTIFACTS, DESKTOP, PHONE, Person, expect, make_provider, offer, post_need
from conftest import AUSTIN
from images import GPS_IFD, jpeg_with_gps
from live import Api
from PIL import Image

pytest.importorskip("playwright.sync_api")

NEEDED_BY = "2031-06-14T23:30:00+00:00"
# zone, browser locale -> what the need page says for NEEDED_BY, rendered by the server.
ZONES = {
    "America/Chicago": ("en-US", "Sat, Jun 14, 2031, 6:30 PM"),
    "Europe/Berlin": ("de-DE", "Sun, 15 Jun 2031, 01:30"),
    "Asia/Kolkata": ("en-IN", "Sun, 15 Jun 2031, 5:00 AM"),
}
AXE_SERIOUS = ("serious", "critical")


def _uid() -> str:
    return uuid.uuid4().hex[:6]




class Visitor(Person):
    """A browser context nobody signed in to (the anonymous reader)."""

    def __init__(self, browser: Any, base: str, viewport: dict[str, int] = PHONE,
                 **context: Any) -> None:
        self.base = base
        self.context = browser.new_context(viewport=viewport, base_url=base, **context)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))


def share_path(api: Api, need_id: int) -> str:
    """The need's public share link, as its customer's page shows it."""
    html = api.sign_in_to_pages().get(f"{api.base}/needs/{need_id}", timeout=10).text
    match = re.search(r'id="share-link" value="[^"]*?(/s/[^"]+)"', html)
    assert match, "no share link on the need page"
    return match.group(1)


def server_html(person: Person, path: str) -> str:
    """The page as the server renders it (this person's cookies), before any script ran."""
    r = person.context.request.get(path)
    assert r.ok, r.status
    return r.text()


@pytest.fixture(scope="module")
def world(base_url: str) -> dict[str, Any]:
    """A customer with an open need and two offers (one from a provider with no ratings)."""
    customer = Api(base_url, f"wa-cust-{_uid()}@example.com", name="Carmen Customer")
    dana = make_provider(base_url, (AUSTIN[0] + 0.01, AUSTIN[1]), "Dana Dough")
    eli = make_provider(base_url, (AUSTIN[0] - 0.01, AUSTIN[1]), "Eli Eats")
    # no digits beside the random part: "30 40079f" reads as a phone number, which every page
    # rightly masks (the share page's title then is not the one posted)
    need = post_need(customer, f"Tacos for thirty, {_uid()}", needed_by=NEEDED_BY)
    return {"customer": customer, "dana": dana, "eli": eli, "need": need,
            "offers": [offer(dana, need["id"], 38000), offer(eli, need["id"], 41000)]}


# --- time -------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", list(ZONES))
def test_times_show_in_the_readers_zone_and_relative_times_keep_up(
        chromium: Any, base_url: str, world: dict[str, Any], zone: str) -> None:
    language, needed_by = ZONES[zone]
    reader = Person(chromium, base_url,
                    Api(base_url, f"wa-tz-{_uid()}@example.com", name="Tess Zone"),
                    timezone_id=zone, locale=language)
    try:
        # The sign-in form told the account its zone: the server renders in it (Babel).
        customer_need = post_need(reader.api, f"Zone party {_uid()}", needed_by=NEEDED_BY)
        html = server_html(reader, f"/needs/{customer_need['id']}")
        assert needed_by.lower() in html.lower(), (zone, needed_by)
        assert 'datetime="2031-06-14T23:30:00Z"' in html
        page = reader.page
        page.clock.install()
        page.goto(f"/needs/{customer_need['id']}")
        when = page.locator('time[datetime="2031-06-14T23:30:00Z"]')
        expect(when).to_have_text(re.compile(re.escape(needed_by), re.I))
        expect(when).to_have_attribute("title", re.compile("2031"))
        # "taking offers until ... (in 2 days)": relative, and kept current without reload.
        relative = page.locator("time[data-relative]").first
        expect(relative).to_have_text("in 2 days")
        page.clock.fast_forward("30:00:00")
        expect(relative).to_have_text("in 18 hours")
        page.clock.fast_forward("17:59:30")
        expect(relative).to_have_text("in less than a minute")
        assert reader.errors == [], reader.errors
    finally:
        reader.close()


def test_a_page_rendered_for_another_zone_is_rewritten_and_the_account_learns_it(
        chromium: Any, base_url: str, world: dict[str, Any]) -> None:
    """Someone who signed in elsewhere (the account says Chicago) opens a page in Kolkata:
    the script writes the times in Kolkata's zone at once and tells the account."""
    api = Api(base_url, f"wa-move-{_uid()}@example.com", name="Mo Ving")
    chicago = Person(chromium, base_url, api, timezone_id="America/Chicago")
    need = post_need(api, f"Moving lunch {_uid()}", needed_by=NEEDED_BY)
    chicago.close()
    kolkata = Visitor(chromium, base_url, timezone_id="Asia/Kolkata", locale="en-US")
    try:
        page = kolkata.page
        # Signed in through the API's cookie-less path: no form told the server the zone.
        session = api.sign_in_to_pages()
        kolkata.context.add_cookies([{"name": c.name, "value": c.value or "", "url": base_url}
                                     for c in session.cookies])
        assert "6:30 PM" in session.get(f"{base_url}/needs/{need['id']}", timeout=10).text
        page.goto(f"/needs/{need['id']}")
        told = page.evaluate("() => window.Nearby.viewer")  # the account's answer
        assert told["time_zone"] in ("Asia/Kolkata", "Asia/Calcutta"), told
        expect(page.locator('time[datetime="2031-06-14T23:30:00Z"]')).to_have_text(
            "Sun, Jun 15, 2031, 5:00 AM")
        assert "5:00 AM" in session.get(f"{base_url}/needs/{need['id']}", timeout=10).text
    finally:
        kolkata.close()


# --- money ------------------------------------------------------------------------------------


def test_amounts_are_written_and_typed_the_readers_way(chromium: Any, base_url: str) -> None:
    german = Person(chromium, base_url, Api(base_url, f"wa-de-{_uid()}@example.com",
                                            name="Greta Geld"),
                    timezone_id="Europe/Berlin", locale="de-DE")
    american = Person(chromium, base_url, Api(base_url, f"wa-us-{_uid()}@example.com",
                                              name="Sam Spend"), timezone_id="America/Chicago")
    try:
        page = german.page
        page.goto("/needs/new")
        # The currency defaults from the account's locale; the common ones come first.
        expect(page.get_by_label("Currency")).to_have_value("EUR")
        first = page.locator("#f-currency > option").all_inner_texts()[:5]
        assert first == ["EUR", "USD", "GBP", "CAD", "AUD"], first
        page.get_by_label("Title").fill("Kuchen für 40 Gäste")
        page.get_by_label("Category").select_option("catering")
        page.get_by_label("Budget").fill("1.250,50 €")
        page.get_by_label("…or a place name").fill("Austin, TX")
        page.get_by_role("button", name="Post my need").click()
        expect(page.get_by_role("heading", name="Kuchen für 40 Gäste")).to_be_visible()
        expect(page.locator(".price").first).to_have_text("1.250,50\u00a0€")
        need_id = int(re.search(r"/needs/(\d+)", page.url).group(1))  # type: ignore[union-attr]
        assert german.api.call("GET", f"/needs/{need_id}").json()["budget"] == {
            "amount": 125050, "currency": "EUR"}
        # The next need defaults to the currency last used.
        page.goto("/needs/new")
        expect(page.get_by_label("Currency")).to_have_value("EUR")

        page = american.page
        page.goto("/needs/new")
        expect(page.get_by_label("Currency")).to_have_value("USD")
        page.get_by_label("Title").fill("Brisket for the office")
        page.get_by_label("Category").select_option("catering")
        page.get_by_label("…or a place name").fill("Austin, TX")
        page.get_by_label("Budget").fill("a lot")
        page.get_by_role("button", name="Post my need").click()
        expect(page.locator("#e-budget")).to_have_text("Enter an amount like $400.00 or $1,250.50.")
        page.get_by_label("Budget").fill("$1,250.50")
        page.get_by_role("button", name="Post my need").click()
        expect(page.get_by_role("heading", name="Brisket for the office")).to_be_visible()
        expect(page.locator(".price").first).to_have_text("$1,250.50")
        for person in (german, american):
            assert person.errors == [], person.errors
    finally:
        german.close()
        american.close()


# --- words and the error summary ----------------------------------------------------------------


def test_a_refused_form_says_what_to_do_and_its_summary_takes_focus(chromium: Any,
                                                                   base_url: str) -> None:
    person = Person(chromium, base_url, Api(base_url, f"wa-err-{_uid()}@example.com"))
    try:
        page = person.page
        page.goto("/needs/new")
        page.get_by_label("Title").fill("x")
        page.get_by_label("Budget").fill("0")
        page.get_by_role("button", name="Post my need").click()
        summary = page.locator("[data-error-summary]")
        expect(summary).to_be_focused()
        expect(summary).to_have_attribute("role", "alert")
        expect(summary).to_contain_text("Give your need a title of 3 to 120 characters.")
        expect(summary).to_contain_text("Enter a budget above zero.")
        expect(summary).to_contain_text("Choose a category.")
        title = page.get_by_label("Title")
        expect(title).to_have_attribute("aria-invalid", "true")
        expect(title).to_have_attribute("aria-describedby", "e-title")
        expect(page.locator("#e-title")).to_have_text(
            "Give your need a title of 3 to 120 characters.")
        summary.get_by_role("link", name=re.compile("^Budget:")).click()
        expect(page.get_by_label("Budget")).to_be_focused()
        person.shot("post-need-error-summary")
        assert person.errors == [], person.errors
    finally:
        person.close()


# --- confirmations ----------------------------------------------------------------------------


def test_accepting_asks_first_in_a_dialog_saying_what_will_happen(
        chromium: Any, base_url: str) -> None:
    customer_api = Api(base_url, f"wa-acc-{_uid()}@example.com", name="Ada Accept")
    dana = make_provider(base_url, (AUSTIN[0] + 0.01, AUSTIN[1]), "Dana Dough")
    eli = make_provider(base_url, (AUSTIN[0] - 0.01, AUSTIN[1]), "Eli Eats")
    need = post_need(customer_api, f"Dinner {_uid()}")
    chosen, other = offer(dana, need["id"], 38000), offer(eli, need["id"], 41000)
    customer = Person(chromium, base_url, customer_api)
    try:
        page = customer.page
        page.goto(f"/needs/{need['id']}")
        accept = page.get_by_role("button", name="Accept offer from Dana Dough")
        accept.click()
        dialog = page.locator("dialog.confirm")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("Accept Dana Dough’s offer for $380.00? The other offer "
                                       "will be declined.")
        expect(dialog.get_by_role("button", name="Go back")).to_be_focused()
        customer.shot("accept-dialog")
        dialog.get_by_role("button", name="Go back").click()
        expect(dialog).to_be_hidden()
        expect(accept).to_be_focused()
        assert customer_api.call("GET", f"/offers/{chosen['id']}").json()["status"] == "pending"
        accept.click()
        dialog.get_by_role("button", name="Accept offer").click()
        expect(page.locator(f"#offer-{chosen['id']}")).to_contain_text("accepted")
        assert customer_api.call("GET", f"/offers/{other['id']}").json()["status"] == "declined"
        assert customer.errors == [], customer.errors
    finally:
        customer.close()


def test_without_javascript_a_confirmation_page_asks_before_acting(chromium: Any,
                                                                  base_url: str) -> None:
    customer_api = Api(base_url, f"wa-nojs-{_uid()}@example.com", name="Nat Noscript")
    dana = make_provider(base_url, (AUSTIN[0] + 0.01, AUSTIN[1]), "Dana Dough")
    need = post_need(customer_api, f"Picnic {_uid()}",
                     needed_by=(datetime.now(UTC) + timedelta(days=5)).isoformat())
    chosen = offer(dana, need["id"], 38000)
    customer = Person(chromium, base_url, customer_api, java_script_enabled=False)
    try:
        page = customer.page
        page.goto(f"/needs/{need['id']}")
        page.get_by_role("button", name="Accept offer from Dana Dough").click()
        expect(page.get_by_role("heading", name="Are you sure?")).to_be_visible()
        expect(page.locator("#confirm-question")).to_have_text(
            "Accept Dana Dough’s offer for $380.00? Dana Dough will see your address and "
            "contact details.")
        customer.shot("confirm-page")
        assert customer_api.call("GET", f"/offers/{chosen['id']}").json()["status"] == "pending"
        page.get_by_role("link", name="Go back").click()
        page.get_by_role("button", name="Accept offer from Dana Dough").click()
        page.get_by_role("button", name="Accept offer").click()
        expect(page.locator(f"#offer-{chosen['id']}")).to_contain_text("accepted")

        # Done before the day it was needed by: the question says so.
        page.get_by_role("button", name="Mark the job completed").click()
        expect(page.locator("#confirm-question")).to_contain_text("which is still ahead")
        page.get_by_role("button", name="Mark as done").click()
        expect(page.get_by_role("heading", name="Rate the provider")).to_be_visible()

        # Revoking a token.
        assert customer_api.call("GET", "/me").status_code == 200
        page.goto("/account/tokens")
        page.get_by_role("button", name=re.compile("^Revoke ")).first.click()
        expect(page.locator("#confirm-question")).to_contain_text("stops working at once")
        page.get_by_role("button", name="Revoke token").click()
        expect(page.get_by_text("Token revoked.")).to_be_visible()
        assert customer_api.call("GET", "/me").status_code == 401
    finally:
        customer.close()


# --- reputation -------------------------------------------------------------------------------


def test_the_offer_card_shows_one_reputation_explained_on_tap(chromium: Any, base_url: str,
                                                              world: dict[str, Any]) -> None:
    customer = Person(chromium, base_url, world["customer"])
    try:
        page = customer.page
        page.goto(f"/needs/{world['need']['id']}")
        card = page.locator(f"#offer-{world['offers'][0]['id']}")
        expect(card.locator(".rep-line")).to_have_text("New no ratings yet")
        why = card.locator("details.rep-why")
        expect(why.locator("p")).to_be_hidden()
        why.locator("summary").click()
        expect(why.locator("p")).to_contain_text("Offers are ranked by a score of")
        expect(card).not_to_contain_text("score 4")  # no bare internal number beside it
    finally:
        customer.close()


# --- fit, toasts, the bell ----------------------------------------------------------------------


def test_tab_strips_fit_a_phone(chromium: Any, base_url: str) -> None:
    pro_api = make_provider(base_url, AUSTIN, "Tab Tester")
    person = Person(chromium, base_url, pro_api)
    try:
        page = person.page
        for path in ("/jobs", "/needs"):
            page.goto(path)
            cut = page.evaluate("""() => Array.from(
                document.querySelectorAll('.tabs a, .tabbar a')).filter(a => {
                  const r = a.getBoundingClientRect();
                  return r.right > window.innerWidth + 0.5 || r.left < -0.5
                    || a.scrollWidth > a.clientWidth + 1;
                }).map(a => a.textContent.trim())""")
            assert cut == [], (path, cut)
    finally:
        person.close()


def test_a_toast_leads_to_what_it_is_about_and_the_bell_skips_what_is_shown(
        chromium: Any, base_url: str) -> None:
    customer_api = Api(base_url, f"wa-toast-{_uid()}@example.com", name="Tia Toast")
    pro = make_provider(base_url, (AUSTIN[0] + 0.01, AUSTIN[1]), "Pia Pro")
    first, second = post_need(customer_api, f"Cake {_uid()}"), post_need(customer_api,
                                                                         f"Pie {_uid()}")
    customer = Person(chromium, base_url, customer_api)
    try:
        page = customer.page
        page.goto(f"/needs/{first['id']}")
        customer.live()
        offer(pro, first["id"], 30000)  # shown on this page: not unread anywhere
        expect(page.locator(".offer", has_text="Pia Pro")).to_be_visible()
        expect(page.locator("#bell-count")).to_be_hidden()
        page.wait_for_function("() => !!window.Nearby.readSent")
        assert len(page.evaluate("() => window.Nearby.readSent")) == 1  # marked read: shown
        page.goto("/")
        customer.live()
        expect(page.locator("#bell-count")).to_be_hidden()  # the server agrees on reload
        offer(pro, second["id"], 31000)  # not on this page: a toast, and the bell counts it
        toast = page.locator("a.toast")
        expect(toast).to_be_visible()
        expect(page.locator("#bell-count")).to_have_text("1")
        toast.click()
        expect(page).to_have_url(re.compile(rf"/needs/{second['id']}$"))
        assert customer.errors == [], customer.errors
    finally:
        customer.close()


# --- keyboard only ----------------------------------------------------------------------------


def tab_to(page: Any, predicate: str, limit: int = 80) -> None:
    """Press Tab until the focused element satisfies ``predicate`` (a function of it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!el && ({predicate})(el); }}"):
            return
    raise AssertionError(f"Tab never reached {predicate}")


def test_posting_a_need_and_accepting_an_offer_with_the_keyboard_only(chromium: Any,
                                                                      base_url: str) -> None:
    customer_api = Api(base_url, f"wa-kbd-{_uid()}@example.com", name="Kim Keys")
    pro = make_provider(base_url, (AUSTIN[0] + 0.01, AUSTIN[1]), "Kai Keyboard")
    customer = Person(chromium, base_url, customer_api)
    title = f"Keyboard catering {_uid()}"
    try:
        page = customer.page
        page.goto("/needs/new")
        tab_to(page, "el => el.id === 'f-title'")
        page.keyboard.type(title)
        tab_to(page, "el => el.id === 'f-category'")
        page.keyboard.type("Catering")
        expect(page.get_by_label("Category")).to_have_value("catering")
        tab_to(page, "el => el.id === 'f-budget'")
        page.keyboard.type("$350")
        tab_to(page, "el => el.id === 'f-place_query'")
        page.keyboard.type("Austin, TX")
        tab_to(page, "el => el.type === 'submit' && el.textContent.includes('Post my need')")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=title)).to_be_visible()
        need_id = int(re.search(r"/needs/(\d+)", page.url).group(1))  # type: ignore[union-attr]
        customer.live()
        offer(pro, need_id, 33000)
        expect(page.locator(".offer", has_text="Kai Keyboard")).to_be_visible()
        tab_to(page, "el => el.type === 'submit' && el.textContent.startsWith('Accept offer from')")
        page.keyboard.press("Enter")
        dialog = page.locator("dialog.confirm")
        expect(dialog.get_by_role("button", name="Go back")).to_be_focused()
        page.keyboard.press("Shift+Tab")
        expect(dialog.get_by_role("button", name="Accept offer")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator(".offer", has_text="Kai Keyboard")).to_contain_text("accepted")
        assert customer.errors == [], customer.errors
    finally:
        customer.close()


# --- every page: axe-core at phone size, and screenshots ----------------------------------------


def axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
    result = page.evaluate("""() => window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa',
                                         'best-practice'] },
      }).then(r => r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) })))""")
    return [v for v in result if v["impact"] in AXE_SERIOUS]


def test_every_page_passes_axe_at_phone_size_and_is_photographed(
        chromium: Any, base_url: str, world: dict[str, Any]) -> None:
    need_id = world["need"]["id"]
    shared = share_path(world["customer"], need_id)
    dana_handle = world["dana"].call("GET", "/me").json()["provider"]["handle"]
    pages = {
        "customer": ["/", f"/needs/{need_id}", "/needs", "/needs/new", "/notifications",
                     "/account/tokens", "/account/sessions", "/account/password",
                     "/account/email", "/account/delete", "/account/photo", "/me/providers",
                     "/account/preferences", f"/p/{dana_handle}", f"/needs/{need_id}/edit",
                     "/trends", "/provider"],
        "provider": ["/feed", "/jobs", f"/needs/{need_id}", "/provider", "/alerts", "/trends"],
        "anonymous": ["/", "/signin", "/signup", "/password-reset", f"/p/{dana_handle}",
                      "/no-such-page", shared],
    }
    found: dict[str, list[dict[str, Any]]] = {}
    people = {
        "customer": lambda vp: Person(chromium, base_url, world["customer"], viewport=vp),
        "provider": lambda vp: Person(chromium, base_url, world["dana"], viewport=vp),
        "anonymous": lambda vp: Visitor(chromium, base_url, viewport=vp),
    }
    for viewport in (PHONE, DESKTOP):
        for who, paths in pages.items():
            person = people[who](viewport)
            try:
                for path in paths:
                    person.page.goto(path)
                    slug = "share" if path.startswith("/s/") else re.sub(  # the need's id
                        r"[^a-z0-9]+", "-", re.sub(rf"/{need_id}\b", "/need", path).strip("/").lower())
                    person.shot(re.sub(r"-[0-9a-f]{6,}", "", f"{who}-{slug or 'home'}"))
                    if viewport is PHONE:
                        violations = axe(person.page)
                        if violations:
                            found[f"{who} {path}"] = violations
            finally:
                person.close()
    assert found == {}, found
    assert any(ARTIFACTS.glob("*-phone.png")) and any(ARTIFACTS.glob("*-desktop.png"))


def test_share_pages_have_link_previews_and_the_app_is_installable(base_url: str,
                                                                   world: dict[str, Any]) -> None:
    need = world["need"]
    html = requests.get(base_url + share_path(world["customer"], need["id"]), timeout=10).text
    assert f'<meta property="og:title" content="{need["title"]}">' in html
    assert re.search(r'<meta property="og:description" content="\$400\.00 · Catering', html)
    assert 'property="og:image"' in html
    manifest = requests.get(f"{base_url}/static/manifest.webmanifest", timeout=10)
    assert manifest.headers["Content-Type"].startswith("application/manifest+json")
    icons = manifest.json()["icons"]
    assert {i["sizes"] for i in icons} >= {"192x192", "512x512"}
    for icon in icons:
        r = requests.get(base_url + icon["src"], timeout=10)
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"


# --- one's photo ------------------------------------------------------------------------------


def test_a_photo_uploaded_on_a_phone_shows_without_its_gps(chromium: Any, base_url: str,
                                                          tmp_path: Any) -> None:
    """The account photo page at phone size: the picture shows in the header, and what the
    server serves carries none of the GPS the upload had."""
    api = Api(base_url, f"photo-{uuid.uuid4().hex[:8]}@example.com", name="Phoebe Photo")
    upload = tmp_path / "holiday.jpg"
    upload.write_bytes(jpeg_with_gps((640, 480)))
    person = Person(chromium, base_url, api, viewport=PHONE)
    try:
        page = person.page
        page.goto("/account/photo")
        expect(page.locator("summary .initials, summary").first).to_contain_text("PP")
        page.get_by_label("Choose a photo").set_input_files(str(upload))
        page.get_by_role("button", name="Save photo").click()
        expect(page.get_by_text("Your photo is saved.")).to_be_visible()
        header = page.locator("summary img.avatar")
        expect(header).to_be_visible()
        # visible is its box (width and height are set); its pixels come when it has loaded
        page.wait_for_function("() => document.querySelector('summary img.avatar').complete")
        assert page.evaluate("() => document.querySelector('summary img.avatar').naturalWidth") == 64
        large = page.locator("#avatar-now img")
        expect(large).to_be_visible()
        src = large.get_attribute("src")
        person.shot("customer-account-photo-saved")
        assert person.errors == []
    finally:
        person.close()
    served = requests.get(base_url + src, timeout=10)
    assert served.headers["Content-Type"] == "image/webp"
    image = Image.open(io.BytesIO(served.content))
    assert image.size == (256, 256) and not image.getexif().get_ifd(GPS_IFD)
    assert api.call("GET", "/me").status_code == 200
