"""audit: ended sessions and disabled principals, so tokens the gateway refuses are refused here too."""

from alembic import op

from govshare_common.migrations import create_revocation_table

revision = "audit_0003"
down_revision = "audit_0002"


def upgrade() -> None:
    create_revocation_table(op)
