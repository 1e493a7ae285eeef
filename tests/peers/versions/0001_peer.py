"""A peer service used by gateway tests: only the platform tables."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "peer_0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
