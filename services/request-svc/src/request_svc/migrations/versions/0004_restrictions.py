"""request: update lapses learnt from catalog and exchange events, the rights restrictions (001 Art.21), and
the major decisions that use shared data (004 Art.19)."""

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
    # Shared data in a major decision (Beijing 004 Art.19): the source cited, the provider's consent asked.
    op.execute(
        """
        CREATE TABLE major_decision (
            id uuid PRIMARY KEY,
            grant_id uuid NOT NULL,
            consumer_code text NOT NULL,
            provider_code text NOT NULL,
            resource_code text NOT NULL,
            title text NOT NULL,
            description text NOT NULL,
            source_citation text NOT NULL,
            state text NOT NULL CHECK (state IN ('pending', 'consented', 'refused')),
            reason text,
            requested_by text NOT NULL,
            requested_at timestamptz NOT NULL,
            answered_by text,
            answered_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX major_decision_parties ON major_decision (provider_code, consumer_code, state)")
