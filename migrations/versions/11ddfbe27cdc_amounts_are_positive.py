"""amounts are positive: a need's budget and an offer's price are at least one minor unit

Revision ID: 11ddfbe27cdc
Revises: 9d4b892c96da
Create Date: 2026-12-02 12:00:00.000000

The CHECK constraints said ">= 0", so a $0 budget was stored and providers were offered "Take
it at 0.00". Rows that already hold a 0 (or less) cannot be given an amount by a migration —
nobody said what they would pay — so the upgrade refuses, names them and changes nothing; set
their amounts and run it again.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '11ddfbe27cdc'
down_revision = '9d4b892c96da'
branch_labels = None
depends_on = None

RULES = (  # table, column, old constraint, new constraint
    ("needs", "budget_amount", "budget_nonnegative", "budget_positive"),
    ("offers", "price_amount", "price_nonnegative", "price_positive"),
)


def _refuse_amounts_below(minimum):
    bind = op.get_bind()
    found = {}
    for table, column, _old, _new in RULES:
        ids = bind.execute(sa.text(
            f"SELECT id FROM {table} WHERE {column} < :m ORDER BY id"), {"m": minimum}).scalars()
        if ids := list(ids):
            found[f"{table}.{column}"] = ids
    if found:
        listed = "; ".join(f"{where} of ids {ids}" for where, ids in found.items())
        raise RuntimeError(
            f"Amounts below {minimum} minor unit(s) would break the new rule: {listed}. Nothing "
            "was changed. Set those amounts (e.g. UPDATE needs SET budget_amount = ... WHERE "
            "id = ...) and run the upgrade again.")


def _swap(drop, create, sign):
    """Replace constraint ``drop`` (0 old, 1 new) of each rule by ``create``: column sign 0."""
    for table, column, *names in RULES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_{names[drop]}"), type_="check")
            batch_op.create_check_constraint(op.f(f"ck_{table}_{names[create]}"),
                                             f"{column} {sign} 0")


def upgrade():
    _refuse_amounts_below(1)
    _swap(drop=0, create=1, sign=">")


def downgrade():
    _swap(drop=1, create=0, sign=">=")
