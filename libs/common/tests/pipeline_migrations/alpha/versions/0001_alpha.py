"""alpha: platform tables and a table of items whose changes it announces."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
    op.execute("CREATE TABLE item (id text PRIMARY KEY, version integer NOT NULL)")
