"""bench beta (the consuming service): the platform tables (its inbox is what the bench measures)."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
