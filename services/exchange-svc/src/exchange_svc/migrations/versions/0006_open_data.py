"""exchange: which resources are open to the public (the catalog's 开放属性), and the public's calls counted per
address and minute, so open data is rate-limited across every replica (003 Art.25-27, 004 Art.20-23)."""

from alembic import op

revision = "exchange_0006"
down_revision = "exchange_0005"


def upgrade() -> None:
    op.execute("ALTER TABLE resource ADD COLUMN open_to_public boolean NOT NULL DEFAULT false")
    op.execute(
        """
        CREATE TABLE open_data_window (
            address text NOT NULL,
            window_start timestamptz NOT NULL,
            calls integer NOT NULL,
            PRIMARY KEY (address, window_start)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE open_data_window")
    op.execute("ALTER TABLE resource DROP COLUMN open_to_public")
