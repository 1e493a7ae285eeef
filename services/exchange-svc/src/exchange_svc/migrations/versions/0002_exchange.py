"""exchange: projections of resources and grants, hosted records with their change log, batches, single-source
declarations and conflicts, subscriptions, disputes, exports and files."""

from alembic import op

revision = "exchange_0002"
down_revision = "exchange_0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE resource (
            code text PRIMARY KEY,
            resource_id text NOT NULL,
            provider_code text NOT NULL,
            provider_name text NOT NULL,
            name text NOT NULL,
            resource_class text NOT NULL,
            share_type text NOT NULL,
            format_category text NOT NULL,
            share_method_type text,
            update_cycle text NOT NULL,
            data_items jsonb NOT NULL,
            declared_key text[],
            version integer NOT NULL,
            status text NOT NULL CHECK (status IN ('published', 'withdrawn')),
            published_at timestamptz NOT NULL,
            last_ingest_at timestamptz,
            stale_due_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE grant_projection (
            grant_id text PRIMARY KEY,
            consumer_code text NOT NULL,
            provider_code text NOT NULL,
            resource_code text NOT NULL,
            items text[] NOT NULL,
            unmasked_items text[] NOT NULL,
            purposes text[] NOT NULL,
            valid_from timestamptz,
            valid_until timestamptz,
            status text NOT NULL CHECK (status IN ('active', 'revoked', 'expired')),
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX grant_by_consumer ON grant_projection (consumer_code, resource_code)")
    op.execute(
        """
        CREATE TABLE batch (
            resource_code text NOT NULL,
            batch_id text NOT NULL,
            provider_code text NOT NULL,
            principal text NOT NULL,
            format text NOT NULL,
            rows integer NOT NULL,
            inserted integer NOT NULL,
            updated integer NOT NULL,
            deleted integer NOT NULL,
            unchanged integer NOT NULL,
            conflicts integer NOT NULL,
            uscc_warnings_confirmed integer NOT NULL,
            received_at timestamptz NOT NULL,
            PRIMARY KEY (resource_code, batch_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE record (
            resource_code text NOT NULL,
            record_key text NOT NULL,
            subject text,
            data jsonb NOT NULL,
            version integer NOT NULL,
            updated_at timestamptz NOT NULL,
            updated_by_batch text,
            PRIMARY KEY (resource_code, record_key)
        )
        """
    )
    op.execute("CREATE INDEX record_subject ON record (resource_code, subject)")
    # The change log: every change of every record, in commit order per resource (ingest holds a per-resource
    # lock), which is both the record history and the subscribers' feed.
    op.execute(
        """
        CREATE TABLE record_change (
            seq bigserial PRIMARY KEY,
            resource_code text NOT NULL,
            record_key text NOT NULL,
            subject text,
            op text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
            changed_items text[] NOT NULL,
            before jsonb,
            after jsonb,
            batch_id text,
            source text NOT NULL,
            provider_code text NOT NULL,
            at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX record_change_feed ON record_change (resource_code, seq)")
    op.execute("CREATE INDEX record_change_record ON record_change (resource_code, record_key, seq)")
    op.execute(
        """
        CREATE TABLE item_source (
            resource_code text NOT NULL,
            item text NOT NULL,
            provider_code text NOT NULL,
            declared_by text NOT NULL,
            declared_at timestamptz NOT NULL,
            PRIMARY KEY (resource_code, item)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE conflict (
            id uuid PRIMARY KEY,
            resource_code text NOT NULL,
            record_key text NOT NULL,
            item text NOT NULL,
            authoritative_provider text NOT NULL,
            authoritative_value jsonb,
            candidate_provider text NOT NULL,
            candidate_value jsonb,
            batch_id text NOT NULL,
            state text NOT NULL CHECK (state IN ('open', 'arbitrated')),
            opened_at timestamptz NOT NULL,
            decision text,
            decided_by text,
            decided_at timestamptz,
            comment text
        )
        """
    )
    op.execute("CREATE INDEX conflict_open ON conflict (resource_code, record_key) WHERE state = 'open'")
    op.execute(
        """
        CREATE TABLE subscription (
            id uuid PRIMARY KEY,
            resource_code text NOT NULL,
            department_code text NOT NULL,
            principal text NOT NULL,
            purpose text NOT NULL,
            cursor bigint NOT NULL,
            status text NOT NULL CHECK (status IN ('active', 'cancelled')),
            created_at timestamptz NOT NULL,
            acked_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE dispute (
            id uuid PRIMARY KEY,
            resource_code text NOT NULL,
            provider_code text NOT NULL,
            consumer_code text NOT NULL,
            record_key text NOT NULL,
            item text NOT NULL,
            reason text NOT NULL,
            raised_by text NOT NULL,
            state text NOT NULL CHECK (state IN ('open', 'answered', 'corrected', 'overdue')),
            copied_to_authority boolean NOT NULL,
            opened_on date NOT NULL,
            due_date date NOT NULL,
            opened_at timestamptz NOT NULL,
            answered_at timestamptz,
            answered_by text,
            answer text,
            corrected_value jsonb
        )
        """
    )
    op.execute("CREATE INDEX dispute_record ON dispute (resource_code, record_key)")
    op.execute(
        """
        CREATE TABLE export (
            id uuid PRIMARY KEY,
            resource_code text NOT NULL,
            department_code text NOT NULL,
            principal text NOT NULL,
            grant_id text,
            purpose text NOT NULL,
            format text NOT NULL CHECK (format IN ('csv', 'jsonl')),
            fingerprint text NOT NULL UNIQUE,
            total_rows integer NOT NULL,
            rows_sent integer NOT NULL DEFAULT 0,
            last_key text,
            status text NOT NULL CHECK (status IN ('created', 'running', 'completed')),
            created_at timestamptz NOT NULL,
            completed_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE hosted_file (
            id uuid PRIMARY KEY,
            resource_code text NOT NULL,
            provider_code text NOT NULL,
            name text NOT NULL,
            content_type text NOT NULL,
            size bigint NOT NULL,
            sha256 text NOT NULL,
            uploaded_by text NOT NULL,
            uploaded_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE file_chunk (
            file_id uuid NOT NULL REFERENCES hosted_file (id) ON DELETE CASCADE,
            n integer NOT NULL,
            content bytea NOT NULL,
            PRIMARY KEY (file_id, n)
        )
        """
    )
