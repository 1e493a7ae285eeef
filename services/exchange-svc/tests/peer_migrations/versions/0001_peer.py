"""A stand-in request-svc for exchange tests: only the platform tables (its outbox emits grant events)."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "peer_0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
