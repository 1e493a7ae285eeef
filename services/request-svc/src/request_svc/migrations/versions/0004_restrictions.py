"""request: update lapses learnt from catalog and exchange events, and the rights restrictions (001 Art.21)."""

from alembic import op

revision = "request_0004"
down_revision = "request_0003"


def upgrade() -> None:
    # A department's missed update (catalog obligation overdue, hosted data stale): the ground a restriction
    # is imposed on. From events only; request-svc never reads the catalog's or exchange's schema.
    op.execute(
        """
        CREATE TABLE update_lapse (
            event_id uuid PRIMARY KEY,
            department_code text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('catalog_overdue', 'data_stale')),
            resource_code text,
            description text NOT NULL,
            occurred_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX update_lapse_department ON update_lapse (department_code, occurred_at)")
    op.execute(
        """
        CREATE TABLE restriction (
            id uuid PRIMARY KEY,
            department_code text NOT NULL,
            reason text NOT NULL,
            lapses jsonb NOT NULL,
            imposed_by text NOT NULL,
            imposed_at timestamptz NOT NULL,
            lifted_by text,
            lifted_at timestamptz,
            lift_reason text
        )
        """
    )
    # One restriction in force per department at a time.
    op.execute("CREATE UNIQUE INDEX restriction_in_force ON restriction (department_code) WHERE lifted_at IS NULL")
