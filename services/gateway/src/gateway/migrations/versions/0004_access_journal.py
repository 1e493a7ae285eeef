"""gateway: how far each access journal has been written to the outbox (moved in the same transaction)."""

from alembic import op

revision = "gateway_0004"
down_revision = "gateway_0003"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE access_journal_position (
            journal text PRIMARY KEY,
            segment bigint NOT NULL,
            byte_offset bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
