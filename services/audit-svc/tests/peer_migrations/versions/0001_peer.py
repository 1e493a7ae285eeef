"""A peer producer used by audit tests: only the platform tables."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "audit_peer_0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
