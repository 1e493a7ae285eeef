"""request: the jurisdiction each department belongs to (the gateway's identity.department.changed) and the
profile each share request is handled under — its provider's jurisdiction's, fixed at submission (issue 16
item 6). A request without one (made before) is the platform's own."""

from alembic import op

revision = "request_0006_jurisdictions"
down_revision = "request_0005"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE department_jurisdiction (
            department_code text PRIMARY KEY,
            jurisdiction_code text,
            profile text,
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute("ALTER TABLE share_request ADD COLUMN profile text")


def downgrade() -> None:
    op.execute("ALTER TABLE share_request DROP COLUMN profile")
    op.execute("DROP TABLE department_jurisdiction")
