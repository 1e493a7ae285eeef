"""audit: ended sessions and disabled principals, so tokens the gateway refuses are refused here too."""

from alembic import op

from govshare_common.migrations import create_revocation_table

revision = "audit_0003"
down_revision = "audit_0002"

WRITER = "govshare_audit_writer"


def upgrade() -> None:
    create_revocation_table(op)
    # Not a log table: the projection follows the gateway, so rows come and go.
    op.execute(f"GRANT SELECT, INSERT, DELETE ON revocation TO {WRITER}")
