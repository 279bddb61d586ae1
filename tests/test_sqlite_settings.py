"""SQLite's settings on every connection the app opens (marketplace/app.py, docs/deploy.md):
WAL, foreign keys, and ``synchronous`` NORMAL unless ``SQLITE_SYNCHRONOUS`` says otherwise;
and what NORMAL promises: a commit survives the process being killed right after it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from marketplace import create_app
from marketplace.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def settings(url: str) -> tuple[str, int, int]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-secret"})
    with app.app_context():
        with db.engine.connect() as conn:
            found = tuple(conn.execute(text(f"PRAGMA {name}")).scalar()
                          for name in ("journal_mode", "synchronous", "foreign_keys"))
        db.engine.dispose()
    return found  # type: ignore[return-value]


def test_every_connection_is_wal_with_foreign_keys_and_synchronous_normal(tmp_path, monkeypatch):
    monkeypatch.delenv("SQLITE_SYNCHRONOUS", raising=False)
    assert settings(f"sqlite:///{tmp_path / 'a.sqlite3'}") == ("wal", 1, 1)


@pytest.mark.parametrize(("value", "level"), [("FULL", 2), ("full", 2), ("EXTRA", 3),
                                              ("normal", 1)])
def test_sqlite_synchronous_chooses_the_level(tmp_path, monkeypatch, value, level):
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", value)
    assert settings(f"sqlite:///{tmp_path / 'b.sqlite3'}")[1] == level


@pytest.mark.parametrize("value", ["OFF", "0", "", "NORMAL; DROP TABLE users"])
def test_an_unknown_sqlite_synchronous_stops_the_start_naming_the_setting(monkeypatch, value):
    monkeypatch.setenv("SQLITE_SYNCHRONOUS", value)
    with pytest.raises(ValueError, match="SQLITE_SYNCHRONOUS must be one of NORMAL, FULL, EXTRA"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test-secret"})


KILLED_AFTER_COMMIT = """
import os, signal, sys
from sqlalchemy import text
from marketplace import create_app
from marketplace.extensions import db
app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1], "SECRET_KEY": "test-secret"})
with app.app_context():
    assert db.session.execute(text("PRAGMA synchronous")).scalar() == 1
    db.session.execute(text("CREATE TABLE kept (n INTEGER)"))
    db.session.execute(text("INSERT INTO kept VALUES (1), (2), (3)"))
    db.session.commit()
    print("committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_with_normal_a_commit_survives_the_process_killed_right_after_it(tmp_path):
    path = tmp_path / "killed.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "SQLITE_SYNCHRONOUS"}
    done = subprocess.run([sys.executable, "-c", KILLED_AFTER_COMMIT, f"sqlite:///{path}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.strip() == "committed"
    assert Path(f"{path}-wal").exists()  # not checkpointed: the commit is in the WAL only
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT n FROM kept ORDER BY n").fetchall() == [(1,), (2,), (3,)]
