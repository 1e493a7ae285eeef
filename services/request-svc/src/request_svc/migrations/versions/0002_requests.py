"""request: the catalog projection, share requests with their history, grants, provider terms, transfers."""

from alembic import op

revision = "request_0002"
down_revision = "request_0001"


def upgrade() -> None:
    # What request-svc knows of the catalog, from catalog events only (it never reads catalog's schema).
    op.execute(
        """
        CREATE TABLE resource_projection (
            code text PRIMARY KEY,
            resource_id text NOT NULL,
            name text NOT NULL,
            provider_code text NOT NULL,
            provider_name text NOT NULL,
            share_type text NOT NULL,
            status text NOT NULL CHECK (status IN ('published', 'withdrawn')),
            data_items jsonb NOT NULL,
            legal_basis text,
            share_conditions text,
            version integer NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE share_request (
            id uuid PRIMARY KEY,
            consumer_code text NOT NULL,
            provider_code text NOT NULL,
            resource_code text NOT NULL,
            resource_id text NOT NULL,
            resource_name text NOT NULL,
            share_type text NOT NULL,
            items text[] NOT NULL,
            purposes text[] NOT NULL,
            purpose_other text,
            scope text NOT NULL,
            security_measures text NOT NULL,
            business_matter text NOT NULL,
            policy_basis text,
            valid_until_wanted timestamptz,
            renews_grant_id uuid,
            state text NOT NULL CHECK (state IN
                ('submitted', 'info_requested', 'approved', 'rejected', 'escalated', 'withdrawn')),
            escalation_level integer NOT NULL DEFAULT -1,
            submitted_by text NOT NULL,
            submitted_at timestamptz NOT NULL,
            submitted_on date NOT NULL,
            deadline_wd integer,
            due_date date,
            due_soon_sent boolean NOT NULL DEFAULT false,
            overdue_since date,
            overdue_count integer NOT NULL DEFAULT 0,
            info_requested_on date,
            decided_by text,
            decided_at timestamptz,
            decision_reason text,
            grant_id uuid,
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX share_request_consumer ON share_request (consumer_code, submitted_at DESC)")
    op.execute("CREATE INDEX share_request_provider ON share_request (provider_code, submitted_at DESC)")
    op.execute("CREATE INDEX share_request_open ON share_request (due_date) WHERE state IN ('submitted', 'escalated')")
    op.execute(
        """
        CREATE TABLE request_history (
            id bigserial PRIMARY KEY,
            request_id uuid NOT NULL REFERENCES share_request (id),
            action text NOT NULL,
            actor text NOT NULL,
            actor_department text,
            at timestamptz NOT NULL,
            note text,
            due_date date
        )
        """
    )
    op.execute("CREATE INDEX request_history_request ON request_history (request_id, id)")
    op.execute(
        """
        CREATE TABLE share_grant (
            id uuid PRIMARY KEY,
            request_id uuid REFERENCES share_request (id),
            consumer_code text NOT NULL,
            provider_code text NOT NULL,
            resource_id text,
            resource_code text NOT NULL,
            items text[] NOT NULL,
            unmasked_items text[] NOT NULL,
            purposes text[] NOT NULL,
            scope text NOT NULL,
            conditions text[] NOT NULL,
            valid_from timestamptz,
            valid_until timestamptz,
            status text NOT NULL CHECK (status IN ('active', 'revoked', 'expired')),
            issued_by text NOT NULL,
            issued_at timestamptz NOT NULL,
            ended_at timestamptz,
            ended_by text,
            ended_by_department text,
            end_reason text
        )
        """
    )
    op.execute("CREATE INDEX share_grant_consumer ON share_grant (consumer_code, issued_at DESC)")
    op.execute("CREATE INDEX share_grant_provider ON share_grant (provider_code, issued_at DESC)")
    op.execute("CREATE INDEX share_grant_expiring ON share_grant (valid_until) WHERE status = 'active'")
    op.execute(
        """
        CREATE TABLE provider_terms (
            department_code text PRIMARY KEY,
            reply_deadline_wd integer NOT NULL CHECK (reply_deadline_wd > 0),
            updated_by text NOT NULL,
            updated_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE transfer (
            id uuid PRIMARY KEY,
            grant_id uuid NOT NULL REFERENCES share_grant (id),
            consumer_code text NOT NULL,
            provider_code text NOT NULL,
            resource_code text NOT NULL,
            third_party text NOT NULL,
            purpose text NOT NULL,
            state text NOT NULL CHECK (state IN ('pending', 'approved', 'refused')),
            office_decision text CHECK (office_decision IN ('approve', 'refuse')),
            office_by text,
            office_at timestamptz,
            provider_decision text CHECK (provider_decision IN ('approve', 'refuse')),
            provider_by text,
            provider_at timestamptz,
            refusal_reason text,
            requested_by text NOT NULL,
            requested_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX transfer_grant ON transfer (grant_id)")
