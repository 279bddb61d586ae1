import logging
from contextlib import contextmanager, nullcontext
from logging.config import fileConfig

from flask import current_app
from sqlalchemy import Table, event

from alembic import context

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')


def get_engine():
    return current_app.extensions['migrate'].db.engine


def get_engine_url():
    return get_engine().url.render_as_string(hide_password=False).replace('%', '%%')


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option('sqlalchemy.url', get_engine_url())
target_db = current_app.extensions['migrate'].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    if hasattr(target_db, 'metadatas'):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url, target_metadata=get_metadata(), literal_binds=True
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    conf_args = current_app.extensions['migrate'].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    connectable = get_engine()

    with connectable.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        with _sqlite_migration(connection) if sqlite else nullcontext():
            context.configure(
                connection=connection,
                target_metadata=get_metadata(),
                **({"transactional_ddl": True} if sqlite else {}),
                **conf_args
            )

            with context.begin_transaction():
                if sqlite:
                    connection.exec_driver_sql("BEGIN")
                context.run_migrations()
                if sqlite:
                    _sqlite_foreign_key_check(connection)


@contextmanager
def _sqlite_migration(connection):
    """SQLite alters a table by rebuilding it (batch mode); three things make that safe.

    Foreign-key enforcement is off, as SQLite's ALTER TABLE procedure prescribes: with it on,
    dropping the old copy first deletes its rows and cascades into every table referring to
    it (_sqlite_foreign_key_check proves nothing broke before the commit). The whole upgrade is
    one transaction (the explicit BEGIN, transactional_ddl): pysqlite would otherwise run DDL
    outside any transaction until the first INSERT, so a failing step left half-rebuilt
    tables and earlier steps behind. And the rebuilt copy keeps AUTOINCREMENT.
    """
    _sqlite_foreign_keys(connection, on=False)
    dbapi = connection.connection.driver_connection
    isolation = dbapi.isolation_level
    dbapi.isolation_level = None  # no implicit BEGIN/COMMIT: the explicit BEGIN holds it all
    event.listen(Table, "before_create", _keep_sqlite_autoincrement)
    try:
        yield
    finally:
        event.remove(Table, "before_create", _keep_sqlite_autoincrement)
        dbapi.isolation_level = isolation
        _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection, on):
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()
    state = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.commit()
    if bool(state) != on:
        raise RuntimeError("could not switch SQLite foreign keys (inside a transaction?)")


def _keep_sqlite_autoincrement(table, connection, **kw):
    """Batch mode rebuilds a SQLite table from its reflection, which does not carry
    AUTOINCREMENT: the new copy keeps it unless the migration passes sqlite_autoincrement."""
    prefix = "_alembic_tmp_"
    given = set(table.dialect_kwargs)  # only what was passed (``in`` also sees defaults)
    if not table.name.startswith(prefix) or "sqlite_autoincrement" in given:
        return
    sql = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
        (table.name[len(prefix):],)).scalar()
    if sql and "AUTOINCREMENT" in sql.upper():
        table.dialect_options["sqlite"]["autoincrement"] = True


def _sqlite_foreign_key_check(connection):
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"the migrations left rows with broken foreign keys: {problems[:10]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
