"""Bytes transferred per page (Chromium's own count: headers and body of every response until
the network is idle, the cache disabled), at phone size, signed in, on a live server of the tree
given (default: this one). Tiles come from the tests' local tile server and are counted apart
(a stand-in tile weighs nothing like a real one).

    .venv/bin/python bench/page_weight.py [TREE]

For a baseline, export an older commit and point TREE at it:
``git archive <commit> | tar -x -C /tmp/before`` plus its ``static/vendor`` and ``.venv``."""
from __future__ import annotations

import os
import sys
import tempfile
import uuid


def main() -> None:
    tree = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    sys.path[:0] = [os.path.join(tree, "tests"), tree]
    os.chdir(tree)
    from browser import CHROMIUM, LAUNCH_ARGS, PHONE, Person, make_provider
    from conftest import AUSTIN, migrated
    from live import Api, server
    from playwright.sync_api import sync_playwright

    try:
        from tiles import TileServer
        tiles = TileServer()
        os.environ["MAP_TILE_URL"] = tiles.url
        TILE_HOST = tiles.url.split("/{z}")[0]
    except ImportError:
        TILE_HOST = "none"
    url = f"sqlite:///{tempfile.mkdtemp()}/weight.sqlite3"
    migrated(url)
    with server(url) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        cust = Api(base, f"w-{uuid.uuid4().hex[:6]}@example.com", name="Wendy")
        pro = make_provider(base, (AUSTIN[0] + 0.01, AUSTIN[1]), "Dana Weight")
        r = cust.call("POST", "/needs", json={"title": "Tacos for 30", "category": "catering",
            "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]}, "radius_km": 20,
            "budget": {"amount": 40000, "currency": "USD"}})
        need = r.json()["id"]
        handle = pro.call("GET", "/me").json()["provider"]["handle"]
        rows = []
        for who, api, paths in (("customer", cust, ["/", "/needs/new", f"/needs/{need}", "/needs"]),
                                ("provider", pro, ["/feed", f"/needs/{need}", f"/p/{handle}"])):
            for path in paths:
                person = Person(browser, base, api, viewport=PHONE)  # a cold cache for each page
                person.page.goto("about:blank")
                cdp = person.context.new_cdp_session(person.page)  # the sign-in warmed the cache
                cdp.send("Network.enable")
                cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                total = {"n": 0, "bytes": 0, "tiles": 0}
                def done(req, total=total):
                    if req.url.startswith(TILE_HOST):
                        total["tiles"] += 1  # the local stand-in tile is not a real tile's weight
                        return
                    s = req.sizes()
                    total["n"] += 1
                    total["bytes"] += s["responseBodySize"] + s["responseHeadersSize"]
                person.page.on("requestfinished", done)
                person.page.goto(path, wait_until="networkidle")
                person.page.remove_listener("requestfinished", done)
                rows.append((who, path.replace(str(need), "<need>"), total["n"], total["bytes"],
                             total["tiles"]))
                person.close()
        browser.close()
    for row in rows:
        print(f"{row[0]:9} {row[1]:22} {row[2]:3} requests {row[3]:9,d} bytes  + {row[4]} tiles")


if __name__ == "__main__":
    main()
