"""exchange: cross-level subscription and bulk export (issue 16 item 5) — at the consumer's platform, each
department's subscription to, and export of, a resource owned on a peer, naming the owner's own subscription or
export (which holds the cursor and the watermark: the owner is the one who checks and counts)."""

from alembic import op

revision = "exchange_0009"
down_revision = "exchange_0008"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE cross_level_subscription (
            id uuid PRIMARY KEY,
            resource_code text NOT NULL,
            origin_platform text NOT NULL,
            origin_subscription_id text NOT NULL,
            department_code text NOT NULL,
            principal text NOT NULL,
            purpose text NOT NULL,
            cursor bigint NOT NULL,
            status text NOT NULL CHECK (status IN ('active', 'cancelled')),
            created_at timestamptz NOT NULL,
            acked_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX cross_level_subscription_department ON cross_level_subscription (department_code)")
    op.execute(
        """
        CREATE TABLE cross_level_export (
            id uuid PRIMARY KEY,
            resource_code text NOT NULL,
            origin_platform text NOT NULL,
            origin_export_id text NOT NULL,
            department_code text NOT NULL,
            principal text NOT NULL,
            purpose text NOT NULL,
            format text NOT NULL CHECK (format IN ('csv', 'jsonl')),
            fingerprint text NOT NULL,
            total_rows integer NOT NULL,
            rows_sent integer NOT NULL DEFAULT 0,
            status text NOT NULL CHECK (status IN ('created', 'running', 'completed')),
            created_at timestamptz NOT NULL,
            completed_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX cross_level_export_fingerprint ON cross_level_export (fingerprint)")


def downgrade() -> None:
    op.execute("DROP TABLE cross_level_export")
    op.execute("DROP TABLE cross_level_subscription")
