"""audit: the profile of each department's jurisdiction (the gateway's identity.department.changed; null: the
platform's own), so a hosted jurisdiction's departments are held to its own rules (issue 16 item 6)."""

from alembic import op

revision = "audit_0006_jurisdictions"
down_revision = "audit_0005"


def upgrade() -> None:
    op.execute("ALTER TABLE department ADD COLUMN profile text")


def downgrade() -> None:
    op.execute("ALTER TABLE department DROP COLUMN profile")
