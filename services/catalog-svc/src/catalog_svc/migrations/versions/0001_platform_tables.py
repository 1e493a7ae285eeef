"""catalog: the platform tables every service has (outbox, inbox, working-day calendar)."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "catalog_0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
