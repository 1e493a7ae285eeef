"""catalog: resources and their versions, the live catalog with its search document, obligations, projects."""

from alembic import op

revision = "catalog_0002"
down_revision = "catalog_0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE resource (
            id uuid PRIMARY KEY,
            provider_code text NOT NULL,
            provider_name text NOT NULL,
            name text NOT NULL,
            code text UNIQUE,
            status text NOT NULL CHECK (status IN ('draft', 'published', 'withdrawn', 'discarded')),
            published_version integer,
            pending_version integer,
            pending_status text CHECK (pending_status IN ('draft', 'submitted', 'returned')),
            latest_version integer NOT NULL,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            withdrawn_by text,
            withdrawn_at timestamptz,
            withdrawn_reason text
        )
        """
    )
    op.execute("CREATE INDEX resource_provider ON resource (provider_code, updated_at DESC)")
    op.execute("CREATE INDEX resource_review_queue ON resource (updated_at) WHERE pending_status = 'submitted'")
    op.execute(
        """
        CREATE TABLE resource_version (
            resource_id uuid NOT NULL REFERENCES resource (id),
            version integer NOT NULL,
            status text NOT NULL CHECK (status IN
                ('draft', 'submitted', 'returned', 'published', 'superseded', 'withdrawn', 'discarded')),
            content jsonb NOT NULL,
            change_reason text,
            diff jsonb NOT NULL DEFAULT '[]',
            created_by text NOT NULL,
            created_at timestamptz NOT NULL,
            updated_by text NOT NULL,
            updated_at timestamptz NOT NULL,
            submitted_by text,
            submitted_at timestamptz,
            reviewed_by text,
            reviewed_at timestamptz,
            review_comment text,
            published_on date,
            PRIMARY KEY (resource_id, version)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE resource_history (
            id bigserial PRIMARY KEY,
            resource_id uuid NOT NULL REFERENCES resource (id),
            version integer NOT NULL,
            action text NOT NULL,
            actor text NOT NULL,
            actor_department text,
            at timestamptz NOT NULL,
            note text,
            diff jsonb NOT NULL DEFAULT '[]'
        )
        """
    )
    op.execute("CREATE INDEX resource_history_resource ON resource_history (resource_id, id)")
    op.execute(
        """
        CREATE TABLE code_sequence (
            classification_code text PRIMARY KEY,
            last_value integer NOT NULL
        )
        """
    )
    # The live catalog, narrow on purpose: search scans it, so it holds only what is matched, ranked, filtered
    # and counted; what a result shows comes from published_snapshot for the page's rows only.
    op.execute(
        """
        CREATE TABLE published_resource (
            resource_id uuid PRIMARY KEY REFERENCES resource (id),
            code text NOT NULL UNIQUE,
            name text NOT NULL,
            provider_code text NOT NULL,
            resource_class text NOT NULL,
            share_type text NOT NULL,
            share_method_type text,
            update_cycle text NOT NULL,
            format_category text NOT NULL,
            open_to_public boolean NOT NULL,
            publish_date date NOT NULL,
            document tsvector NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX published_resource_document ON published_resource USING gin (document)")
    op.execute("CREATE INDEX published_resource_recent ON published_resource (publish_date DESC, code)")
    op.execute("CREATE INDEX published_resource_provider ON published_resource (provider_code)")
    op.execute(
        "CREATE INDEX published_resource_negative ON published_resource (code) WHERE share_type <> 'unconditional'"
    )
    op.execute("CREATE INDEX published_resource_open ON published_resource (publish_date DESC) WHERE open_to_public")
    op.execute(
        """
        CREATE TABLE published_snapshot (
            resource_id uuid PRIMARY KEY REFERENCES resource (id),
            snapshot jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE TABLE provider (code text PRIMARY KEY, id serial UNIQUE, name text NOT NULL)")
    # Postings: one row per (word, published resource) with the resource's rank for that word alone and its
    # facets as small codes, plus a row under the empty word for every resource. A one-word search or a
    # filter-only browse is then an index-only scan in rank order (the page) and over the word's entries
    # (the counts), however many resources the word is in. Derived from published_resource, rebuilt per
    # resource on publication.
    op.execute(
        """
        CREATE TABLE search_posting (
            lexeme text NOT NULL,
            score real NOT NULL,
            resource_id uuid NOT NULL REFERENCES resource (id),
            resource_class smallint NOT NULL,
            share_type smallint NOT NULL,
            share_method_type smallint NOT NULL,
            update_cycle smallint NOT NULL,
            format_category smallint NOT NULL,
            open_to_public boolean NOT NULL,
            provider integer NOT NULL,
            publish_date date NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX search_posting_rank ON search_posting (lexeme, score DESC, resource_id) INCLUDE "
        "(resource_class, share_type, share_method_type, update_cycle, format_category, open_to_public, "
        "provider, "
        "publish_date)"
    )
    op.execute("CREATE INDEX search_posting_resource ON search_posting (resource_id)")
    # Facet counts of each word over the whole live catalog, and under the empty word those of the catalog
    # itself, also given any one facet value (given_facet/given_value; '' and 0 for none). Kept with the
    # postings: an unfiltered one-word search, or a browse with at most one filter, reads its counts.
    op.execute(
        """
        CREATE TABLE search_stat (
            lexeme text NOT NULL,
            given_facet text NOT NULL,
            given_value integer NOT NULL,
            facet text NOT NULL,
            value integer NOT NULL,
            n integer NOT NULL,
            PRIMARY KEY (lexeme, given_facet, given_value, facet, value)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE obligation (
            id uuid PRIMARY KEY,
            department_code text NOT NULL,
            department_name text,
            reason text NOT NULL,
            description text NOT NULL,
            recorded_by text NOT NULL,
            recorded_at timestamptz NOT NULL,
            recorded_on date NOT NULL,
            working_days integer NOT NULL,
            due_on date NOT NULL,
            due_unknown_years integer[] NOT NULL DEFAULT '{}',
            status text NOT NULL CHECK (status IN ('open', 'overdue', 'fulfilled', 'closed')),
            overdue_since date,
            fulfilled_at timestamptz,
            fulfilled_by_resource uuid,
            fulfilled_late boolean,
            closed_by text,
            closed_note text
        )
        """
    )
    op.execute("CREATE INDEX obligation_department ON obligation (department_code, status)")
    op.execute("CREATE INDEX obligation_due ON obligation (due_on) WHERE status = 'open'")
    op.execute(
        """
        CREATE TABLE project (
            id uuid PRIMARY KEY,
            department_code text NOT NULL,
            name text NOT NULL,
            description text,
            status text NOT NULL CHECK (status IN ('registered', 'approved', 'accepted')),
            registered_by text NOT NULL,
            registered_at timestamptz NOT NULL,
            approved_by text,
            approved_at timestamptz,
            accepted_by text,
            accepted_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX project_department ON project (department_code)")
    op.execute(
        """
        CREATE TABLE project_resource (
            project_id uuid NOT NULL REFERENCES project (id),
            resource_id uuid NOT NULL REFERENCES resource (id),
            position integer NOT NULL,
            PRIMARY KEY (project_id, resource_id)
        )
        """
    )
