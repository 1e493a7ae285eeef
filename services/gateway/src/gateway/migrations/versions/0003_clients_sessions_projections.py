"""gateway: machine clients, sessions (refresh and revocation), and projections of grants and resources."""

from alembic import op

revision = "gateway_0003"
down_revision = "gateway_0002"


def upgrade() -> None:
    op.execute("ALTER TABLE department ADD COLUMN commitment text")
    op.execute("ALTER TABLE app_user ADD COLUMN created_by text")
    op.execute(
        """
        CREATE TABLE client (
            id uuid PRIMARY KEY,
            client_id text NOT NULL UNIQUE,
            name text NOT NULL,
            department_code text NOT NULL REFERENCES department (code),
            roles text[] NOT NULL,
            secret_hash text NOT NULL,
            previous_secret_hash text,
            previous_valid_until timestamptz,
            cert_sha256 text,
            rate_per_second double precision NOT NULL DEFAULT 50,
            burst integer NOT NULL DEFAULT 100,
            status text NOT NULL DEFAULT 'active',
            created_by text,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE session (
            id uuid PRIMARY KEY,
            principal_kind text NOT NULL,
            principal_id uuid NOT NULL,
            refresh_hash text UNIQUE,
            created_at timestamptz NOT NULL,
            last_used_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX session_principal ON session (principal_id)")
    op.execute(
        """
        CREATE TABLE grant_projection (
            grant_id text PRIMARY KEY,
            consumer_code text NOT NULL,
            resource_code text NOT NULL,
            purposes text[] NOT NULL,
            valid_from timestamptz,
            valid_until timestamptz,
            status text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX grant_projection_lookup ON grant_projection (consumer_code, resource_code)")
    op.execute(
        """
        CREATE TABLE resource_projection (
            code text PRIMARY KEY,
            provider_code text NOT NULL,
            share_type text NOT NULL,
            status text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
