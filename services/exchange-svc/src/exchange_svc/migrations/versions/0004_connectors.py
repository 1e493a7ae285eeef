"""exchange: the departments' front-end connectors (前置机) as they report themselves: heartbeat, lag, and the
resources whose online queries they answer."""

from alembic import op

revision = "exchange_0004"
down_revision = "exchange_0003"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE connector (
            department_code text NOT NULL,
            name text NOT NULL,
            principal text NOT NULL,
            serve_url text,
            serve_token text,
            serves text[] NOT NULL DEFAULT '{}',
            report jsonb NOT NULL DEFAULT '{}',
            first_seen_at timestamptz NOT NULL,
            last_heartbeat_at timestamptz NOT NULL,
            PRIMARY KEY (department_code, name)
        )
        """
    )
    op.execute("CREATE INDEX connector_serves ON connector USING gin (serves)")


def downgrade() -> None:
    op.execute("DROP TABLE connector")
