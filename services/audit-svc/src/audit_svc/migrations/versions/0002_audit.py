"""audit: the chained, append-only log (monthly partitions), checkpoints and their key, retention records, and
supervision's own tables (facts, usage counts, departments, rectification notices, complaints).

The service's runtime connections log in as the writer role (audit_svc.ledger.grant_writer), which may only
INSERT and SELECT the log tables: an UPDATE or DELETE of an audit row is refused by PostgreSQL itself.
"""

from alembic import op

revision = "audit_0002"
down_revision = "audit_0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit_head (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            position bigint NOT NULL,
            hash bytea NOT NULL,
            recorded_at timestamptz
        )
        """
    )
    op.execute("INSERT INTO audit_head (only_row, position, hash) VALUES (true, 0, decode(repeat('00', 32), 'hex'))")
    op.execute("CREATE TABLE audit_source_head (source text PRIMARY KEY, last_seq bigint NOT NULL)")
    op.execute(
        """
        CREATE TABLE audit_entry (
            position bigint NOT NULL,
            recorded_at timestamptz NOT NULL,
            source text NOT NULL,
            seq bigint NOT NULL,
            event_id uuid NOT NULL,
            type text NOT NULL,
            occurred_at timestamptz NOT NULL,
            department text,
            provider text,
            resource text,
            grant_id text,
            actor text,
            body bytea NOT NULL,
            prev_hash bytea NOT NULL,
            hash bytea NOT NULL,
            PRIMARY KEY (position, recorded_at)
        ) PARTITION BY RANGE (recorded_at)
        """
    )
    op.execute("CREATE INDEX audit_entry_source_seq ON audit_entry (source, seq)")
    op.execute("CREATE INDEX audit_entry_department ON audit_entry (department, position) WHERE department IS NOT NULL")
    op.execute("CREATE INDEX audit_entry_provider ON audit_entry (provider, position) WHERE provider IS NOT NULL")
    op.execute("CREATE INDEX audit_entry_resource ON audit_entry (resource, position) WHERE resource IS NOT NULL")
    op.execute("CREATE INDEX audit_entry_grant ON audit_entry (grant_id, position) WHERE grant_id IS NOT NULL")
    op.execute(
        """
        CREATE TABLE audit_subject (
            subject_hash text NOT NULL,
            position bigint NOT NULL,
            recorded_at timestamptz NOT NULL
        ) PARTITION BY RANGE (recorded_at)
        """
    )
    op.execute("CREATE INDEX audit_subject_hash ON audit_subject (subject_hash, position)")
    op.execute(
        """
        CREATE TABLE audit_signing_key (
            kid text PRIMARY KEY,
            private_key bytea NOT NULL,
            public_key bytea NOT NULL,
            created_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE audit_checkpoint (
            id bigserial PRIMARY KEY,
            position bigint NOT NULL,
            hash bytea NOT NULL,
            recorded_at timestamptz,
            signed_at timestamptz NOT NULL,
            kid text NOT NULL REFERENCES audit_signing_key (kid),
            signature bytea NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX audit_checkpoint_position ON audit_checkpoint (position)")
    op.execute(
        """
        CREATE TABLE audit_partition_drop (
            partition text PRIMARY KEY,
            range_start timestamptz NOT NULL,
            range_end timestamptz NOT NULL,
            first_position bigint,
            last_position bigint,
            last_hash bytea,
            entries bigint NOT NULL,
            checkpoint_id bigint REFERENCES audit_checkpoint (id),
            retention_years integer NOT NULL,
            dropped_at timestamptz NOT NULL
        )
        """
    )

    # --- supervision -------------------------------------------------------------------------------------
    op.execute(
        """
        CREATE TABLE department (
            code text PRIMARY KEY,
            name text NOT NULL,
            status text,
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE supervision_fact (
            event_id uuid PRIMARY KEY,
            type text NOT NULL,
            kind text NOT NULL,
            department text NOT NULL,
            counterpart text,
            reference text NOT NULL,
            resource text,
            occurred_at timestamptz NOT NULL,
            data jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX supervision_fact_department ON supervision_fact (department, occurred_at)")
    op.execute("CREATE INDEX supervision_fact_kind ON supervision_fact (kind, occurred_at)")
    op.execute(
        """
        CREATE TABLE usage_daily (
            day date NOT NULL,
            department text NOT NULL,
            resource text NOT NULL,
            kind text NOT NULL,
            count bigint NOT NULL,
            rows bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (day, department, resource, kind)
        )
        """
    )
    op.execute("CREATE INDEX usage_daily_department ON usage_daily (department, day)")
    op.execute(
        """
        CREATE TABLE request_state (
            request_id text PRIMARY KEY,
            consumer_code text,
            provider_code text,
            resource_code text,
            state text NOT NULL,
            due_date date,
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notice (
            id uuid PRIMARY KEY,
            number text NOT NULL UNIQUE,
            department_code text NOT NULL,
            violation text NOT NULL,
            reference text NOT NULL,
            description text NOT NULL,
            source_event_id uuid,
            reported_by text,
            opened_at timestamptz NOT NULL,
            opened_on date NOT NULL,
            working_days integer NOT NULL,
            due_on date NOT NULL,
            status text NOT NULL CHECK (status IN ('open', 'answered', 'closed', 'escalated')),
            answer text,
            answered_by text,
            answered_at timestamptz,
            decision_note text,
            decided_by text,
            decided_at timestamptz,
            closed_at timestamptz,
            escalations integer NOT NULL DEFAULT 0,
            UNIQUE (violation, reference)
        )
        """
    )
    op.execute("CREATE INDEX notice_department ON notice (department_code, opened_at)")
    op.execute("CREATE INDEX notice_status ON notice (status, due_on)")
    op.execute("CREATE SEQUENCE notice_number")
    op.execute(
        """
        CREATE TABLE complaint (
            id uuid PRIMARY KEY,
            number text NOT NULL UNIQUE,
            complainant_name text NOT NULL,
            complainant_contact text NOT NULL,
            department_code text,
            subject text NOT NULL,
            content text NOT NULL,
            received_on date NOT NULL,
            channel text NOT NULL,
            registered_by text NOT NULL,
            registered_at timestamptz NOT NULL,
            due_on date NOT NULL,
            status text NOT NULL CHECK (status IN ('registered', 'handling', 'answered')),
            handling_note text,
            handled_by text,
            answer text,
            answered_by text,
            answered_on date,
            answered_at timestamptz
        )
        """
    )
    op.execute("CREATE SEQUENCE complaint_number")
