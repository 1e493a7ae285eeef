"""bench alpha (the producing service): the platform tables only; it writes nothing but events."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
