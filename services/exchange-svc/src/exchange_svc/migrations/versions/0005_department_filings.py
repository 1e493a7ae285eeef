"""exchange: which departments have made their first-access filing (the gateway's identity.department.changed),
so data use can be refused before it where the profile asks (003 Art.36)."""

from alembic import op

revision = "exchange_0005"
down_revision = "exchange_0004"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE department_filing (
            department_code text PRIMARY KEY,
            filed boolean NOT NULL,
            changed_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE department_filing")
