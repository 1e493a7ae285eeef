"""beta: platform tables and a log of every alpha event it handled, in handling order."""

from alembic import op

from govshare_common.migrations import create_platform_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op)
    op.execute(
        "CREATE TABLE received (n bigserial PRIMARY KEY, event_id uuid NOT NULL, subject text NOT NULL, "
        "version integer NOT NULL, seq bigint NOT NULL)"
    )
