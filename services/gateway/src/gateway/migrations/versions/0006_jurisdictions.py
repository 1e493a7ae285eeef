"""gateway: jurisdictions hosted on this platform (issue 16 item 6), each with its profile, and the
jurisdiction a department belongs to (none: the platform's own)."""

from alembic import op

revision = "gateway_0006_jurisdictions"
down_revision = "gateway_0005"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE jurisdiction (
            code text PRIMARY KEY,
            name text NOT NULL,
            profile text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            created_by text NOT NULL
        )
        """
    )
    op.execute("ALTER TABLE department ADD COLUMN jurisdiction_code text REFERENCES jurisdiction (code)")


def downgrade() -> None:
    op.execute("ALTER TABLE department DROP COLUMN jurisdiction_code")
    op.execute("DROP TABLE jurisdiction")
