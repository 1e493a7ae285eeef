"""request: the public's demands for open data (004 Art.20, 003 Art.31), each answered by the provider or the
platform office within the profile's working days."""

from alembic import op

revision = "request_0005"
down_revision = "request_0004"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE open_data_demand (
            id uuid PRIMARY KEY,
            department_code text NOT NULL,
            resource_code text,
            subject text NOT NULL,
            content text NOT NULL,
            requester_name text NOT NULL,
            requester_contact text NOT NULL,
            filed_at timestamptz NOT NULL,
            filed_on date NOT NULL,
            working_days integer,
            due_on date,
            state text NOT NULL CHECK (state IN ('pending', 'answered')),
            answer text,
            answered_by text,
            answered_at timestamptz,
            overdue_since date
        )
        """
    )
    op.execute("CREATE INDEX open_data_demand_owner ON open_data_demand (department_code, state)")


def downgrade() -> None:
    op.execute("DROP TABLE open_data_demand")
