"""A throwaway database for one benchmark run: a temporary SQLite file, or a new PostgreSQL
database on the admin server — removed afterwards, whatever happens."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_database(backend: str, pg_admin_url: str, prefix: str) -> Iterator[tuple[str, str]]:
    """(SQLAlchemy URL, where it is, for the report) of an empty database of ``backend``."""
    if backend == "sqlite":
        tmpdir = tempfile.mkdtemp(prefix=f"{prefix}-")
        try:
            yield f"sqlite:///{tmpdir}/bench.sqlite3", f"temporary file {tmpdir}"
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return
    import psycopg

    name = f"mkt_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(pg_admin_url, autocommit=True, connect_timeout=5)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{pg_admin_url.rpartition('/')[0]}/{name}", f"database {name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
