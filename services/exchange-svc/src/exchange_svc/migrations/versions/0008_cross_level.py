"""exchange: cross-level online query (issue 16 item 5) — the peer register learnt from catalog-svc's events
(peers, mirrored resources, nonces of peer calls seen here), and on each grant the peer platform its consumer's
request came through, so only that peer may use it (a grant of this platform's own has none)."""

from alembic import op

from govshare_common.peer_register import DROP_TABLES, TABLES

revision = "exchange_0008"
down_revision = "exchange_0007"


def upgrade() -> None:
    for statement in TABLES:  # the peer register, as request-svc keeps it too
        op.execute(statement)
    op.execute("ALTER TABLE grant_projection ADD COLUMN consumer_platform text")


def downgrade() -> None:
    op.execute("ALTER TABLE grant_projection DROP COLUMN consumer_platform")
    for statement in DROP_TABLES:
        op.execute(statement)
