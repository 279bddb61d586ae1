"""ids are never reused: SQLite tables with a database-assigned id become AUTOINCREMENT

Revision ID: 9d4b892c96da
Revises: f8951de760f2
Create Date: 2026-12-02 10:00:00.000000

Without AUTOINCREMENT, SQLite gives a new row the highest id + 1, so deleting the newest row
(an API token, say) hands its id to the next row, and a retried request about the old id reaches
the new one. SQLite can only add AUTOINCREMENT by rebuilding the table (batch mode, recreate
"always"; env.py turns foreign-key enforcement off for the rebuild and checks every foreign key
before commit). Rows keep their ids, and sqlite_sequence starts at each table's highest id.
PostgreSQL's sequences never go back, so nothing changes there.

The list of tables is written out here rather than read from the models: a migration must not
change when the code does.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '9d4b892c96da'
down_revision = 'f8951de760f2'
branch_labels = None
depends_on = None

TABLES = ("categories", "users", "api_tokens", "idempotency_keys", "providers", "needs",
          "offers", "ratings", "messages")


def _rebuild(autoincrement):
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:
        with op.batch_alter_table(name, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade():
    _rebuild(True)


def downgrade():
    _rebuild(False)
