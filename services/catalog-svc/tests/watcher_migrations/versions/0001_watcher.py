"""watcher (tests only): a consumer of catalog events, recording each one it handles."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "watcher_0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
    op.execute(
        """
        CREATE TABLE received (
            n bigserial PRIMARY KEY,
            event_id uuid NOT NULL UNIQUE,
            type text NOT NULL,
            subject text NOT NULL,
            seq bigint NOT NULL,
            data jsonb NOT NULL
        )
        """
    )
