"""exchange: a batch while it runs (issue 19): its state and progress, readable while the body still streams in,
kept after it ends (done, failed, cancelled, interrupted) so a provider sees what became of every upload."""

from alembic import op

revision = "exchange_0007"
down_revision = "exchange_0006"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE batch_run (
            id uuid PRIMARY KEY,
            resource_code text NOT NULL,
            batch_id text NOT NULL,
            provider_code text NOT NULL,
            principal text NOT NULL,
            format text NOT NULL,
            state text NOT NULL,
            chunk_rows integer NOT NULL,
            rows_received bigint NOT NULL DEFAULT 0,
            rows_done bigint NOT NULL DEFAULT 0,
            rows_total bigint,
            bytes_received bigint NOT NULL DEFAULT 0,
            bytes_total bigint,
            started_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            finished_at timestamptz,
            cancel_requested_at timestamptz,
            -- the backend holding the batch's transaction, so an interrupted run's leftovers can be ended
            backend_pid integer,
            backend_started_at timestamptz,
            error jsonb,
            result jsonb
        )
        """
    )
    op.execute("CREATE INDEX batch_run_provider ON batch_run (provider_code, started_at DESC)")
    op.execute("CREATE INDEX batch_run_running ON batch_run (state) WHERE finished_at IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE batch_run")
