"""The migrations are the schema: they build exactly what the models declare, on SQLite and on
PostgreSQL; they go down to nothing and back up again; they seed the category list; and there is
one line of history (one head)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import make_test_app, throwaway_pg_database
from flask import Flask
from sqlalchemy import inspect, text

from marketplace.config import ROOT
from marketplace.extensions import db

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
            assert table_names() <= {"alembic_version"}, "downgrade to base left tables behind"
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
