"""SQLite's settings on every connection the app opens (marketplace/app.py, docs/deploy.md):
WAL, foreign keys, and ``synchronous`` NORMAL unless ``SQLITE_SYNCHRONOUS`` says otherwise.
(That a commit in WAL mode survives the process dying is SQLite's own promise, whatever the
level; only a machine crash separates NORMAL from FULL, which a test cannot cause.)"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from marketplace import create_app
from marketplace.extensions import db


def settings(url: str) -> tuple[str, int, int]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-secret"})
    with app.app_context():
        with db.engine.connect() as first, db.engine.connect() as second:  # two connections
            assert first.connection.dbapi_connection is not second.connection.dbapi_connection
            found = {tuple(conn.execute(text(f"PRAGMA {name}")).scalar()
                           for name in ("journal_mode", "synchronous", "foreign_keys"))
                     for conn in (first, second)}
        db.engine.dispose()
    assert len(found) == 1, found  # the same on each
    return found.pop()  # type: ignore[return-value]


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


def test_a_request_on_sqlite_runs_no_connection_test(tmp_path, monkeypatch):
    """An SQLite file cannot drop the process's connections, so none is tested on checkout
    (``pool_pre_ping`` was a ``SELECT 1`` on every request); a server's still are (the restart
    tests in test_faults_answers.py)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'c.sqlite3'}",
                      "SECRET_KEY": "test-secret"})
    with app.app_context():
        db.create_all()
        pings: list[object] = []
        monkeypatch.setattr(type(db.engine.dialect), "do_ping",
                            lambda self, connection: pings.append(connection) or True)
        client = app.test_client()
        for _ in range(3):
            assert client.get("/api/v1/categories").status_code == 200
        db.engine.dispose()
    assert pings == []
    server = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none",
                         "SECRET_KEY": "test-secret"})
    assert server.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
