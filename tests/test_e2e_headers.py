"""The Content-Security-Policy in a real browser: Chromium enforces it, the pages (and the API
explorer, whose one inline script carries the nonce) run under it without a single violation,
and a script or style smuggled into a page is refused."""

from __future__ import annotations

from typing import Any

import pytest
from browser import DESKTOP, Person, expect, make_provider
from conftest import AUSTIN

pytest.importorskip("playwright.sync_api")

VIOLATIONS = """() => {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation',
    e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
}"""


def test_pages_run_under_the_policy_and_injected_code_is_refused(chromium: Any,
                                                                 base_url: str) -> None:
    api = make_provider(base_url, AUSTIN, "Cora Policy")
    person = Person(chromium, base_url, api, viewport=DESKTOP)
    person.context.add_init_script(f"({VIOLATIONS})()")
    missing: list[str] = []
    person.page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    try:
        for path in ("/", "/needs/new", "/feed", "/provider", "/notifications",
                     "/account/tokens"):
            person.page.goto(path)
            person.page.wait_for_load_state("load")
            assert person.page.evaluate("window.__violations") == [], path
            assert missing == [], (path, missing)
        person.page.goto("/api/v1/docs")
        expect(person.page.locator(".opblock").first).to_be_visible()
        assert person.page.evaluate("window.__violations") == []
        assert missing == [], missing
        assert person.errors == [], person.errors

        # What an injection would try: an inline script, an inline style, an event handler.
        person.page.goto("/")
        person.page.evaluate("""() => {
          const s = document.createElement('script');
          s.textContent = 'window.__ran = true';
          document.body.appendChild(s);
          const d = document.createElement('div');
          d.innerHTML = '<img src="/static/app.css" onerror="window.__ran = true">'
                      + '<p id="styled" style="color: rgb(255, 0, 0)">x</p>';
          document.body.appendChild(d);
        }""")
        person.page.wait_for_function("() => window.__violations.length >= 3")
        assert person.page.evaluate("window.__ran") is None
        colour = person.page.evaluate(
            "getComputedStyle(document.getElementById('styled')).color")
        assert colour != "rgb(255, 0, 0)"
        directives = {v.split()[0] for v in person.page.evaluate("window.__violations")}
        assert {"script-src-elem", "style-src-attr"} <= directives
    finally:
        person.close()
