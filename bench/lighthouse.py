"""Lighthouse (npm, mobile defaults, Debian's Chromium) on the demo's main pages, signed in as
the people who read them: scores for performance, accessibility and best practices, and the
bytes each page transfers.

    python -m bench.lighthouse            # home, sign-in, a need page, the feed, a profile, ...
    python -m bench.lighthouse --pages home,feed --runs 3

It starts the demo (``flask seed-demo`` on a fresh SQLite file, ``python -m marketplace.serve``,
the production server) on a free port, installs Lighthouse into ``bench/lighthouse/`` from its
lock file on first use (``npm ci``; the suite never needs it), signs in through the API, and
hands Lighthouse the session cookie. The maps' tiles come from a local tile server
(bench/tiles.py: every tile one small PNG) unless ``--tiles configured`` keeps the configured
``MAP_TILE_URL`` (OpenStreetMap's by default, which a machine without internet cannot reach:
its failed tile requests then cost best-practices points). Lighthouse's own mobile defaults
apply: a Moto G Power sized screen, simulated slow 4G and a 4x slower CPU. Each page runs
``--runs`` times and the median score is printed; the baseline is the issue's bar, 1.00 on
each category (the ratio column is score / 1.00, and no page may be below 0.95).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from bench.common import free_port, load_note, out, wait_serving
from bench.tiles import TileServer

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices")
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
FLOOR = 0.95

# page name -> (who is signed in or None, how to find its path from the running demo)
PAGES = ("home", "signin", "need", "feed", "profile", "my-needs", "trends", "new-need")


def lighthouse_cli() -> Path:
    cli = HERE / "node_modules" / "lighthouse" / "cli" / "index.js"
    if not cli.exists():
        out("installing Lighthouse into bench/lighthouse/ (npm ci, once)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                       check=True)
    return cli


def version() -> str:
    return json.loads((HERE / "node_modules" / "lighthouse" / "package.json").read_text())[
        "version"]


class Demo:
    """The demo server on a fresh SQLite database."""

    def __init__(self, tiles: str = "local") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lighthouse-"))
        self.tiles = TileServer() if tiles == "local" else None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": f"sqlite:///{self.dir / 'demo.sqlite3'}",
                    "FLASK_APP": "wsgi", "HOST": "127.0.0.1", "PORT": str(self.port),
                    "SECRET_KEY": "lighthouse-bench", "PUBLIC_URL": self.base,
                    "RATELIMIT_ENABLED": "0"}
        self.env.pop("REDIS_URL", None)
        if self.tiles is not None:
            self.env["MAP_TILE_URL"] = self.tiles.url
        self.log = self.dir / "server.log"
        self.proc: subprocess.Popen[Any] | None = None

    def __enter__(self) -> Demo:
        flask = [sys.executable, "-m", "flask"]
        for args in (["db", "upgrade"], ["seed-demo"]):
            subprocess.run(flask + args, cwd=ROOT, env=self.env, check=True,
                           stdout=subprocess.DEVNULL)
        self.proc = subprocess.Popen([sys.executable, "-m", "marketplace.serve"], cwd=ROOT,
                                     env=self.env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT)
        wait_serving(self.proc, self.base + "/healthz", self.log.read_text)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.tiles is not None:
            self.tiles.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def signed_in(self, email: str) -> tuple[requests.Session, str]:
        """A page session for ``email`` (the sign-in form, as a browser) and its Cookie."""
        from marketplace.demo import PASSWORD

        session = requests.Session()
        page = session.get(self.base + "/signin", timeout=10).text
        token = page.split('name="csrf_token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
        r = session.post(self.base + "/signin", timeout=10, allow_redirects=False, data={
            "email": email, "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 302, r.text
        return session, "; ".join(f"{c.name}={c.value}" for c in session.cookies)

    def api(self, email: str) -> requests.Session:
        from marketplace.demo import PASSWORD

        session = requests.Session()
        r = session.post(self.base + "/api/v1/tokens", timeout=10,
                         json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        session.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return session


def targets(demo: Demo, names: list[str]) -> list[tuple[str, str, str | None]]:
    """(name, URL, Cookie or None) for each page asked for."""
    customer, provider = "alice@demo.test", "dana@demo.test"
    _, customer_cookie = demo.signed_in(customer)
    _, provider_cookie = demo.signed_in(provider)
    mine = demo.api(customer).get(demo.base + "/api/v1/needs?mine=true", timeout=10).json()
    need_id = next(n["id"] for n in mine["items"] if n["status"] == "open")
    paths = {
        "home": ("/", None),
        "signin": ("/signin", None),
        "need": (f"/needs/{need_id}", customer_cookie),
        "feed": ("/feed", provider_cookie),
        "profile": ("/p/dana-cooks", None),
        "my-needs": ("/needs", customer_cookie),
        "trends": ("/trends?lat=30.2672&lon=-97.7431", customer_cookie),
        "new-need": ("/needs/new", customer_cookie),
    }
    return [(name, demo.base + paths[name][0], paths[name][1]) for name in names]


def run_once(cli: Path, url: str, cookie: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = ["node", str(cli), url, "--quiet", "--output=json", f"--output-path={report}",
                f"--only-categories={','.join(CATEGORIES)}", f"--chrome-path={CHROMIUM}",
                "--chrome-flags=--headless=new --no-sandbox --disable-gpu"]
        if cookie:
            args.append(f"--extra-headers={json.dumps({'Cookie': cookie})}")
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        data = json.loads(report.read_text())
    if data.get("runtimeError"):
        raise RuntimeError(f"{url}: {data['runtimeError']}")
    if data["finalDisplayedUrl"].rstrip("/") != url.rstrip("/"):
        raise RuntimeError(f"{url} ended at {data['finalDisplayedUrl']} (not signed in?)")
    audits = data["audits"]
    failing = sorted(
        (audit_id for cat in CATEGORIES for ref in data["categories"][cat]["auditRefs"]
         if ref["weight"] and (audit_id := ref["id"]) in audits
         and audits[audit_id]["score"] is not None and audits[audit_id]["score"] < 1),
    )
    return {"scores": {cat: data["categories"][cat]["score"] for cat in CATEGORIES},
            "bytes": audits["total-byte-weight"]["numericValue"],
            "lcp_ms": audits["largest-contentful-paint"]["numericValue"],
            "failing": failing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--tiles", choices=("local", "configured"), default="local",
                        help="map tiles from a local tile server (default) or MAP_TILE_URL")
    args = parser.parse_args(argv)
    names = [p for p in args.pages.split(",") if p]
    unknown = set(names) - set(PAGES)
    if unknown:
        parser.error(f"unknown pages: {', '.join(sorted(unknown))} (known: {', '.join(PAGES)})")
    cli = lighthouse_cli()
    out(f"Lighthouse {version()}, mobile defaults, {CHROMIUM}; {load_note()}")
    out(f"baseline: the bar of 1.00 per category; median of {args.runs} run(s) per page; "
        f"map tiles: {'a local tile server' if args.tiles == 'local' else 'MAP_TILE_URL'}")
    out()
    out("| page | performance | accessibility | best practices | LCP (ms) | transferred |")
    out("|---|---|---|---|---|---|")
    worst, heaviest = 1.0, ("", 0.0)
    with Demo(args.tiles) as demo:
        for name, url, cookie in targets(demo, names):
            runs = [run_once(cli, url, cookie) for _ in range(args.runs)]
            scores = {c: statistics.median(r["scores"][c] for r in runs) for c in CATEGORIES}
            size = statistics.median(r["bytes"] for r in runs)
            lcp = statistics.median(r["lcp_ms"] for r in runs)
            worst = min(worst, *scores.values())
            if size > heaviest[1]:
                heaviest = (name, size)
            out(f"| {name} | " + " | ".join(f"{scores[c]:.2f}" for c in CATEGORIES)
                + f" | {lcp:,.0f} | {size / 1024:,.1f} KiB |")
            failing = sorted({a for r in runs for a in r["failing"]})
            if failing:
                out(f"|  | below 1: {', '.join(failing)} | | | | |")
    out()
    out(f"lowest score {worst:.2f} (ratio to the 1.00 bar: {worst / 1.0:.2f}; floor {FLOOR}); "
        f"heaviest page: {heaviest[0]}, {heaviest[1] / 1024:,.1f} KiB transferred")
    return 0 if worst >= FLOOR else 1


if __name__ == "__main__":
    raise SystemExit(main())
