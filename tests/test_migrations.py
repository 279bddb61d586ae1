"""The migrations are the schema: they build exactly what the models declare, on SQLite and on
PostgreSQL (including what autogenerate does not compare: CHECK constraints, partial indexes and
SQLite's AUTOINCREMENT); they go down to nothing and back up again; upgrading a database keeps
every row; they seed the category list; and there is one line of history (one head)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import make_test_app, throwaway_pg_database
from flask import Flask
from sqlalchemy import MetaData, Table, inspect, select, text

from marketplace.config import ROOT
from marketplace.extensions import db
from marketplace.geo import grid_cell_centre, km_cos, lat_row, unit_vector

MIGRATIONS = ROOT / "migrations"


def script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def schema_diff() -> list[Any]:
    """What autogenerate would write to turn the current database into the models' schema."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_one_head() -> None:
    heads = script().get_heads()
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {heads}; merge them"


def test_history_is_one_line() -> None:
    """Every revision but the first has exactly one parent, and the chain from the head reaches
    the base through every revision in the directory."""
    revisions = list(script().walk_revisions())
    bases = [r for r in revisions if r.down_revision is None]
    assert len(bases) == 1
    assert all(not isinstance(r.down_revision, tuple) for r in revisions)
    files = {p.stem.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("*.py")}
    assert {r.revision for r in revisions} == files


def test_migrated_schema_matches_the_models(app: Flask) -> None:
    """The test database was built by ``flask_migrate.upgrade()``; autogenerate finds nothing
    to change (tables, columns, types, nullability, indexes, unique constraints, foreign keys)."""
    diff = schema_diff()
    assert diff == [], "the migrations and the models disagree:\n" + "\n".join(map(repr, diff))


def test_database_is_at_the_head(app: Flask) -> None:
    assert current_revision() == script().get_current_head()


def _sqlite_table_sql() -> dict[str, str]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        return {name: sql for name, sql in rows}


def test_every_database_assigned_id_is_never_reused(app: Flask, backend: str) -> None:
    """Each table whose integer id the database assigns declares AUTOINCREMENT in the models
    and has it in the migrated SQLite schema (without it SQLite hands the id of a deleted newest
    row out again); on PostgreSQL its id comes from a sequence that does not cycle. Tables
    whose ids the code assigns (notifications, from NotificationCounter) have neither."""
    surrogate = {t.name for t in db.metadata.sorted_tables if t.autoincrement_column is not None}
    assert {"users", "api_tokens", "needs", "offers", "messages"} <= surrogate
    for table in db.metadata.sorted_tables:
        assert bool(table.dialect_options["sqlite"]["autoincrement"]) == (table.name in surrogate), \
            f"{table.name}: __table_args__ should include IDS_NEVER_REUSED"
    if backend == "sqlite":
        sql = _sqlite_table_sql()
        assert {name for name, create in sql.items() if "AUTOINCREMENT" in create} == surrogate
        return
    with db.engine.connect() as conn:
        for name in surrogate:
            cycles = conn.scalar(text(
                "SELECT s.seqcycle FROM pg_sequence s "
                "WHERE s.seqrelid = pg_get_serial_sequence(:t, 'id')::regclass"), {"t": name})
            assert cycles is False, f"{name}.id has no sequence, or one that cycles"


def _check_constraints() -> dict[str, dict[str, str]]:
    with db.engine.connect() as conn:
        inspector = inspect(conn)
        return {t.name: {c["name"]: c["sqltext"] for c in inspector.get_check_constraints(t.name)}
                for t in db.metadata.sorted_tables}


def test_check_constraints_match_the_models(app: Flask, backend: str) -> None:
    """autogenerate does not compare CHECK constraints, and a SQLite table rebuild could drop
    one unnoticed: every table has exactly the models' constraints (by name everywhere; by
    text on SQLite, which keeps it as written)."""
    found = _check_constraints()
    for table in db.metadata.sorted_tables:
        declared = {c.name: str(c.sqltext) for c in table.constraints
                    if type(c).__name__ == "CheckConstraint"}
        if backend == "sqlite":
            assert found[table.name] == declared, table.name
        else:
            assert set(found[table.name]) == set(declared), table.name


def test_partial_unique_index_keeps_its_condition(app: Flask, backend: str) -> None:
    """One accepted offer per need, not one offer per need: the index stays partial."""
    with db.engine.connect() as conn:
        index = next(i for i in inspect(conn).get_indexes("offers")
                     if i["name"] == "uq_offers_one_accepted_per_need")
    where = index["dialect_options"][f"{backend}_where"]
    assert "status" in str(where) and "accepted" in str(where)


def test_categories_are_seeded_by_the_migration(app: Flask) -> None:
    with db.engine.connect() as conn:
        slugs = set(conn.scalars(text("SELECT slug FROM categories")))
    assert len(slugs) == 20
    assert "catering" in slugs


@pytest.fixture
def scratch_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same backend, thrown away afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
        return
    with throwaway_pg_database("mkt_scratch") as url:
        yield url


def table_names() -> set[str]:
    with db.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def category_slugs() -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.scalars(text("SELECT slug FROM categories")))


def test_downgrade_to_base_and_upgrade_again(scratch_url: str) -> None:
    scratch = make_test_app(scratch_url)
    model_tables = {t.name for t in db.metadata.sorted_tables}
    with scratch.app_context():
        try:
            flask_migrate.upgrade()
            assert table_names() == model_tables | {"alembic_version"}
            assert len(category_slugs()) == 20

            flask_migrate.downgrade(revision="base")
            assert table_names() == {"alembic_version"}, "downgrade to base left tables behind"
            assert current_revision() is None

            flask_migrate.upgrade()
            assert table_names() == model_tables | {"alembic_version"}
            assert current_revision() == script().get_current_head()
            slugs = category_slugs()
            assert len(slugs) == 20 and "catering" in slugs
            diff = schema_diff()
            assert diff == [], "after down and up again:\n" + "\n".join(map(repr, diff))
        finally:
            db.session.remove()
            db.engine.dispose()


def test_each_step_goes_down_and_up(scratch_url: str) -> None:
    """Every revision's downgrade undoes its upgrade well enough for the upgrade to run again."""
    scratch = make_test_app(scratch_url)
    revisions = [r.revision for r in reversed(list(script().walk_revisions()))]
    with scratch.app_context():
        try:
            for revision in revisions:
                flask_migrate.upgrade(revision=revision)
                flask_migrate.downgrade(revision="-1")
                flask_migrate.upgrade(revision=revision)
                assert current_revision() == revision
            assert schema_diff() == []
        finally:
            db.session.remove()
            db.engine.dispose()


def test_the_comparison_would_notice_drift(scratch_url: str) -> None:
    """The check above is not vacuous: a missing index, a missing partial unique index and a
    column the models do not have all show up in the diff."""
    scratch = make_test_app(scratch_url)
    with scratch.app_context():
        try:
            flask_migrate.upgrade()
            with db.engine.begin() as conn:
                conn.execute(text("DROP INDEX ix_needs_feed"))
                conn.execute(text("DROP INDEX uq_offers_one_accepted_per_need"))
                conn.execute(text("ALTER TABLE messages ADD COLUMN extra VARCHAR(5)"))
            diff = schema_diff()
            kinds = {(d[0], getattr(d[1], "name", None)) for d in diff if isinstance(d, tuple)}
            assert ("add_index", "ix_needs_feed") in kinds
            assert ("add_index", "uq_offers_one_accepted_per_need") in kinds
            assert any(d[0] == "remove_column" and d[2] == "messages" and d[3].name == "extra"
                       for d in diff if isinstance(d, tuple))
        finally:
            db.session.remove()
            db.engine.dispose()


T0 = datetime(2026, 11, 1, 12, 0)
#: One of everything, written as rows of the schema at revision 971615d74d14 (blocks added),
#: so the rows stay valid whatever the models become. Need 1 and offer 1 point at each other.
OLD_ROWS: dict[str, list[dict[str, Any]]] = {
    "users": [{"id": i, "email": f"u{i}@example.com", "name": f"U {i}", "phone": None,
               "password_hash": "x", "created_at": T0} for i in (1, 2, 3)],
    "api_tokens": [{"id": i, "user_id": i, "name": "t", "token_hash": f"{i:064d}",
                    "prefix": "mkt_x", "created_at": T0, "last_used_at": None} for i in (1, 2)],
    "idempotency_keys": [{"id": 1, "scope": "user:1", "key": "k", "user_id": 1,
                          "request_hash": "0" * 64, "status_code": 201, "response_body": "{}",
                          "created_at": T0}],
    "providers": [{"id": 1, "user_id": 2, "handle": "pro-two", "display_name": "Pro",
                   "bio": "", "base_lat": 30.0, "base_lon": -97.0, "radius_km": 25.0,
                   "active": True, "created_at": T0, "updated_at": T0}],
    "provider_categories": [{"provider_id": 1, "category_id": 1}],
    "provider_coverage": [{"provider_id": 1, "category_id": 1, "user_id": 2, "lat_row": 1200,
                           "lat": 30.0, "lon": -97.0, "radius_km": 25.0}],
    "needs": [{"id": i, "customer_id": 1, "category_id": 1, "title": f"Need {i}",
               "description": "", "lat": 30.0, "lon": -97.0, "lat_row": 1200, "place": None,
               "address": "1 Main St", "radius_km": 20.0, "budget_amount": 100 * i,
               "budget_currency": "USD", "needed_by": None, "expires_at": T0, "max_offers": None,
               "offer_count": 1, "status": status, "accepted_offer_id": None,
               "assigned_at": None, "completed_at": None, "cancelled_at": None,
               "cancelled_by_id": None, "cancel_reason": None, "share_token": f"share{i}",
               "created_at": T0} for i, status in ((1, "completed"), (2, "open"))],
    "offers": [{"id": i, "need_id": i, "provider_id": 1, "price_amount": 100 * i,
                "price_currency": "USD", "message": "", "available_at": None, "status": status,
                "created_at": T0, "updated_at": T0} for i, status in ((1, "accepted"),
                                                                       (2, "pending"))],
    "messages": [{"id": i, "offer_id": 1, "sender_id": i, "body": f"m{i}", "created_at": T0}
                 for i in (1, 2)],
    "ratings": [{"id": 1, "need_id": 1, "provider_id": 1, "customer_id": 1, "stars": 5,
                 "quality": None, "punctuality": None, "communication": None, "comment": "",
                 "reply": None, "replied_at": None, "created_at": T0}],
    "notifications": [{"id": 1, "user_id": 2, "type": "need.matched", "data": {"need_id": 2},
                       "created_at": T0, "read_at": None}],
    "blocks": [{"customer_id": 3, "provider_id": 1, "created_at": T0}],
}


def _rows(names: list[str]) -> dict[str, list[dict[str, Any]]]:
    meta = MetaData()
    with db.engine.connect() as conn:
        out = {}
        for name in names:
            table = Table(name, meta, autoload_with=conn)
            key = list(table.primary_key.columns)
            out[name] = [dict(r) for r in conn.execute(select(table).order_by(*key)).mappings()]
        return out


def _foreign_keys() -> dict[str, list[Any]]:
    with db.engine.connect() as conn:
        inspector = inspect(conn)
        return {t: sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                           fk["options"].get("ondelete")) for fk in inspector.get_foreign_keys(t))
                for t in inspector.get_table_names()}


def _last_ids(backend: str, names: list[str]) -> dict[str, int]:
    """The highest id each table's generator has handed out (sqlite_sequence, sequences)."""
    with db.engine.connect() as conn:
        if backend == "sqlite":
            rows = conn.execute(text("SELECT name, seq FROM sqlite_sequence")).all()
            return {name: seq for name, seq in rows if name in names}
        out = {}
        for name in names:
            sequence = conn.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": name})
            out[name] = conn.scalar(text(f"SELECT last_value FROM {sequence}"))
        return out


def test_upgrading_a_database_with_rows_keeps_every_row(scratch_url: str, backend: str) -> None:
    """A database with one of everything, upgraded from 971615d74d14 to the head, keeps every
    row and every foreign key — SQLite rebuilds tables on the way (offers for its revision
    column, every id table for AUTOINCREMENT), and a rebuild with foreign keys enforced would
    cascade the old table's deletion into messages and accepted offers. Afterwards foreign keys
    are enforced again, and the next id of every table is above every id it had."""
    scratch = make_test_app(scratch_url)
    with scratch.app_context():
        try:
            flask_migrate.upgrade(revision="971615d74d14")
            with db.engine.connect() as conn:
                existing = set(inspect(conn).get_table_names())  # tables of that revision
            surrogate = [t.name for t in db.metadata.sorted_tables
                         if t.autoincrement_column is not None and t.name in existing]
            meta = MetaData()
            with db.engine.begin() as conn:
                for name, rows in OLD_ROWS.items():
                    conn.execute(Table(name, meta, autoload_with=conn).insert(), rows)
                conn.execute(text("UPDATE needs SET accepted_offer_id = 1 WHERE id = 1"))
                conn.execute(text("UPDATE notification_counter SET last_id = 1"))
                if backend == "postgresql":  # as if the sequences had handed the ids out
                    for name in surrogate:
                        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                          f"(SELECT max(id) FROM {name}))"))
            kept_tables = [*OLD_ROWS, "categories", "notification_counter"]
            before, fks_before = _rows(kept_tables), _foreign_keys()
            assert all(before[name] for name in surrogate)

            flask_migrate.upgrade()
            after = _rows(kept_tables)
            # The matching index is derived from the profile and now holds the base's cell.
            cell = grid_cell_centre(30.0, -97.0)
            before["provider_coverage"] = [{**row, "lat": cell.lat, "lon": cell.lon,
                                            "lat_row": lat_row(cell.lat)}
                                           for row in before["provider_coverage"]]
            for name, rows in before.items():
                kept = [{k: row[k] for k in rows[0]} for row in after[name]]
                assert kept == rows, f"{name} changed in the upgrade"
            assert after["needs"][0]["accepted_offer_id"] == 1
            for need in after["needs"]:  # the feed's vectors, filled in as the model computes
                cell = grid_cell_centre(need["lat"], need["lon"])
                assert (need["ux"], need["uy"], need["uz"]) == pytest.approx(
                    tuple(unit_vector(need["lat"], need["lon"])), abs=1e-15)
                assert (need["cell_ux"], need["cell_uy"], need["cell_uz"]) == pytest.approx(
                    tuple(unit_vector(*cell)), abs=1e-15)
                assert need["reach_cos"] == pytest.approx(km_cos(need["radius_km"]), abs=1e-15)
            fks_after = _foreign_keys()
            assert {t: fks_after[t] for t in fks_before} == fks_before
            assert schema_diff() == []

            if backend == "sqlite":
                with db.engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                    assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert _last_ids(backend, surrogate) == {
                name: max(r["id"] for r in before[name]) for name in surrogate}
        finally:
            db.session.remove()
            db.engine.dispose()


def _schema() -> Any:
    """The whole schema as the database states it (SQLite's own SQL; PostgreSQL's catalog)."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return sorted(conn.execute(text("SELECT type, name, sql FROM sqlite_master")).all())
        inspector = inspect(conn)
        return {t: repr((inspector.get_columns(t), inspector.get_check_constraints(t),
                         inspector.get_indexes(t), inspector.get_foreign_keys(t)))
                for t in sorted(inspector.get_table_names())}


def test_an_upgrade_that_refuses_changes_nothing(scratch_url: str) -> None:
    """Amounts of 0 from before budgets and prices had to be positive: the upgrade refuses,
    names the rows, and leaves the database exactly as it was — on SQLite too, where the
    migrations run in one transaction, table rebuilds included — so once the rows are given
    amounts the same upgrade goes through."""
    scratch = make_test_app(scratch_url)
    with scratch.app_context():
        try:
            flask_migrate.upgrade(revision="971615d74d14")
            meta = MetaData()
            rows = {**OLD_ROWS,
                    "needs": [OLD_ROWS["needs"][0], {**OLD_ROWS["needs"][1], "budget_amount": 0}],
                    "offers": [{**OLD_ROWS["offers"][0], "price_amount": 0},
                               OLD_ROWS["offers"][1]]}
            with db.engine.begin() as conn:
                for name, table_rows in rows.items():
                    conn.execute(Table(name, meta, autoload_with=conn).insert(), table_rows)
            names = [*OLD_ROWS, "categories", "notification_counter"]
            before, schema_before = _rows(names), _schema()

            config = scratch.extensions["migrate"].migrate.get_config()
            with pytest.raises(RuntimeError) as refused:
                command.upgrade(config, "head")
            message = str(refused.value)
            assert "needs.budget_amount of ids [2]" in message
            assert "offers.price_amount of ids [1]" in message
            assert current_revision() == "971615d74d14"
            assert _schema() == schema_before
            assert _rows(names) == before

            with db.engine.begin() as conn:
                conn.execute(text("UPDATE needs SET budget_amount = 100 WHERE id = 2"))
                conn.execute(text("UPDATE offers SET price_amount = 100 WHERE id = 1"))
            command.upgrade(config, "head")
            assert current_revision() == script().get_current_head()
            assert schema_diff() == []
        finally:
            db.session.remove()
            db.engine.dispose()


def test_the_read_counts_are_filled_so_each_unread_count_stays_what_it_was(
        scratch_url: str) -> None:
    """b4f7d2a9c6e1 keeps, per recipient, how many notifications they marked read (the unread
    count is their newest seq less it). Upgraded with notifications in place -- some read,
    one recipient with all read, one with none, one without any, and one whose seqs have a
    hole (none should; the fill takes the newest seq less the unread ones, so even then) --
    each unread count is what counting the unread rows gave before."""
    from marketplace.notifications import services

    scratch = make_test_app(scratch_url)
    with scratch.app_context():
        try:
            flask_migrate.upgrade(revision="a7d2e5f8c3b1")
            meta = MetaData()
            # user: (their seqs, those marked read); user 1's seqs skip 3
            inbox = {1: ([1, 2, 4, 5, 6], {1, 4}), 2: ([1, 2, 3], {1, 2, 3}), 3: ([1, 2, 3], set())}
            with db.engine.begin() as conn:
                conn.execute(Table("users", meta, autoload_with=conn).insert(),
                             [*OLD_ROWS["users"],
                              {**OLD_ROWS["users"][0], "id": 4, "email": "u4@example.com"}])
                notifications = Table("notifications", meta, autoload_with=conn)
                rows, next_id = [], 1
                for user_id, (seqs, marked) in inbox.items():
                    for seq in seqs:
                        rows.append({"id": next_id, "user_id": user_id, "seq": seq,
                                     "type": "need.matched", "data": {}, "created_at": T0,
                                     "read_at": T0 if seq in marked else None})
                        next_id += 1
                conn.execute(notifications.insert(), rows)
            before = {u: sum(1 for r in rows if r["user_id"] == u and r["read_at"] is None)
                      for u in (1, 2, 3, 4)}
            assert before == {1: 3, 2: 0, 3: 3, 4: 0}

            flask_migrate.upgrade()
            assert _rows(["notification_reads"])["notification_reads"] == [
                {"user_id": 1, "read_count": 3}, {"user_id": 2, "read_count": 3},
                {"user_id": 3, "read_count": 0}]
            assert {u: services.resume_point(u)[1] for u in (1, 2, 3, 4)} == before
        finally:
            db.session.remove()
            db.engine.dispose()
