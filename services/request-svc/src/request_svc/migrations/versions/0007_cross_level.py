"""request: cross-level share requests (issue 16 item 4) — the peer platforms and the mirrored resources learnt
from catalog-svc's events, the nonces of peer calls seen here, and on a request either where it is decided (at
the applicant's platform: the origin platform and its request) or whom it came from (at the owner's: the
applicant's platform, its request and the forwarding call's idempotency key), with the delivery state of each."""

from alembic import op

from govshare_common.peer_register import DROP_TABLES, TABLES

revision = "request_0007_cross_level"
down_revision = "request_0006_jurisdictions"


def upgrade() -> None:
    for statement in TABLES:  # the peer register, as exchange-svc keeps it too
        op.execute(statement)
    # A request forwarded to another platform is `forwarding` until that platform has it, `forward_refused` when
    # it refused it; from then on it shows the state the deciding platform reports.
    op.execute("ALTER TABLE share_request DROP CONSTRAINT share_request_state_check")
    op.execute(
        "ALTER TABLE share_request ADD CONSTRAINT share_request_state_check CHECK (state IN ('submitted', "
        "'info_requested', 'approved', 'rejected', 'escalated', 'withdrawn', 'forwarding', 'forward_refused'))"
    )
    # At the applicant's platform.
    op.execute("ALTER TABLE share_request ADD COLUMN origin_platform text")
    op.execute("ALTER TABLE share_request ADD COLUMN next_hop text")
    op.execute("ALTER TABLE share_request ADD COLUMN origin_request_id text")
    op.execute("ALTER TABLE share_request ADD COLUMN origin_version timestamptz")
    op.execute("ALTER TABLE share_request ADD COLUMN origin_status jsonb")
    op.execute("ALTER TABLE share_request ADD COLUMN forward_body jsonb")
    op.execute("ALTER TABLE share_request ADD COLUMN forward_attempts integer NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE share_request ADD COLUMN forward_error text")
    # At the owner's platform.
    op.execute("ALTER TABLE share_request ADD COLUMN consumer_platform text")
    op.execute("ALTER TABLE share_request ADD COLUMN consumer_name text")
    op.execute("ALTER TABLE share_request ADD COLUMN peer_request_id text")
    op.execute("ALTER TABLE share_request ADD COLUMN peer_idempotency_key text")
    op.execute("ALTER TABLE share_request ADD COLUMN peer_synced_at timestamptz")
    op.execute("ALTER TABLE share_request ADD COLUMN peer_sync_error text")
    op.execute(
        "CREATE UNIQUE INDEX share_request_from_peer ON share_request (consumer_platform, peer_idempotency_key) "
        "WHERE consumer_platform IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX share_request_forward_pending ON share_request (submitted_at) "
        "WHERE origin_platform IS NOT NULL AND origin_request_id IS NULL AND state = 'forwarding'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX share_request_forward_pending")
    op.execute("DROP INDEX share_request_from_peer")
    for column in (
        "origin_platform",
        "next_hop",
        "origin_request_id",
        "origin_version",
        "origin_status",
        "forward_body",
        "forward_attempts",
        "forward_error",
        "consumer_platform",
        "consumer_name",
        "peer_request_id",
        "peer_idempotency_key",
        "peer_synced_at",
        "peer_sync_error",
    ):
        op.execute(f"ALTER TABLE share_request DROP COLUMN {column}")
    op.execute("ALTER TABLE share_request DROP CONSTRAINT share_request_state_check")
    op.execute(
        "ALTER TABLE share_request ADD CONSTRAINT share_request_state_check CHECK (state IN ('submitted', "
        "'info_requested', 'approved', 'rejected', 'escalated', 'withdrawn'))"
    )
    for statement in DROP_TABLES:
        op.execute(statement)
