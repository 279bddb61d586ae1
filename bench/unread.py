"""Unread-count benchmark: what a page's resume point costs as a recipient's notifications pile up.

    .venv/bin/python -m bench.unread [--sizes 100,1000,10000,100000] [--reads 200] \
        [--backends sqlite,postgresql]

Every signed-in page and every ``GET /api/v1/notifications`` asks the recipient's newest
notification id, unread count and newest seq (``notifications.services.resume_point``). Per
backend: a throw-away database built by the migrations (a temporary SQLite file; a new
PostgreSQL database on ``TEST_POSTGRES_URL``'s server, dropped at the end), one account, and
its notifications added in steps up to each size (every tenth left unread, the others marked
read by id through ``services.mark_read`` as a client would, so the kept count is the real one),
ANALYZEd. At each size the shipped read and, as the baseline in the same run, the statement
it replaced (a count over the recipient's rows) are timed interleaved, read by read, in one
open transaction (so neither pays for starting it); both must give the same answer (the exit
status is 1 if not).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

from bench.common import load_note, out
from bench.scratch import scratch_database

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def old_statement() -> Any:
    """The resume point before the kept read count: every row of the recipient read."""
    from sqlalchemy import bindparam, func, select

    from marketplace.notifications.models import Notification

    return (select(func.coalesce(func.max(Notification.id), 0),
                   func.count().filter(Notification.read_at.is_(None)),
                   func.coalesce(func.max(Notification.seq), 0))
            .where(Notification.user_id == bindparam("user_id")))


def _measure(args: argparse.Namespace, url: str) -> bool:
    import flask_migrate
    from sqlalchemy import insert, text

    from marketplace import create_app
    from marketplace.accounts import services as accounts
    from marketplace.extensions import db, rows
    from marketplace.notifications import services
    from marketplace.notifications.models import Notification

    ok = True
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                      "SECRET_KEY": "bench-secret", "PASSWORD_HASH_FAST": True})
    try:
        with app.app_context():
            flask_migrate.upgrade()
            user = accounts.register("reader@bench.test", "bench password 1", "Reader")
            db.session.commit()
            old, have = old_statement(), 0
            out(f"  {'notifications':>13}  {'shipped p50':>11}  {'old count p50':>13}  "
                f"{'old / shipped':>13}  unread")
            for size in args.sizes:
                batch = [{"id": i, "user_id": user.id, "seq": i, "type": "need.matched",
                          "data": {}} for i in range(have + 1, size + 1)]
                for start in range(0, len(batch), 5000):
                    db.session.execute(insert(Notification.__table__), batch[start:start + 5000])
                db.session.execute(text("UPDATE notification_counter SET last_id = :n"),
                                   {"n": size})
                db.session.commit()
                marked = [r["id"] for r in batch if r["id"] % 10]
                for start in range(0, len(marked), 5000):  # as a client marks them, by ids
                    services.mark_read(user, marked[start:start + 5000], None)
                have = size
                if db.engine.dialect.name == "postgresql":
                    with db.engine.connect().execution_options(
                            isolation_level="AUTOCOMMIT") as conn:
                        conn.execute(text("VACUUM ANALYZE notifications"))
                shipped_t, old_t = [], []
                params = {"user_id": user.id}
                rows(old, params).one()  # opens the transaction every read below shares
                for _ in range(args.reads):
                    t = time.perf_counter()
                    new = services.resume_point(user.id)
                    shipped_t.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    was = tuple(int(v) for v in rows(old, params).one())
                    old_t.append(time.perf_counter() - t)
                    if new != was:
                        out(f"  DIFFERENT at {size}: shipped {new}, old {was}")
                        ok = False
                db.session.rollback()
                a, b = statistics.median(shipped_t) * 1000, statistics.median(old_t) * 1000
                out(f"  {size:>13,}  {a:>8.3f} ms  {b:>10.3f} ms  {b / a:>12.1f}x  {new[1]:,}")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100,1000,10000,100000",
                   type=lambda s: sorted({int(x) for x in s.split(",")}))
    p.add_argument("--reads", type=int, default=200)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    args = p.parse_args(argv)
    out(f"unread count: sizes {args.sizes}, {args.reads} reads each; {load_note()}")
    ok = True
    for backend in args.backends.split(","):
        with scratch_database(backend, args.pg_admin_url, "bench-unread") as (url, where):
            out(f"{backend} ({where}):")
            ok = _measure(args, url) and ok
    out(f"answers identical: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
