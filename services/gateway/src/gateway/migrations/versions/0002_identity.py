"""gateway: signing keys and the identity store (departments, users)."""

from alembic import op

revision = "gateway_0002"
down_revision = "gateway_0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE signing_key (
            kid text PRIMARY KEY,
            algorithm text NOT NULL,
            private_key bytea NOT NULL,
            public_jwk jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            retired_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE department (
            code text PRIMARY KEY,
            name text NOT NULL,
            level text NOT NULL,
            parent_code text REFERENCES department (code),
            status text NOT NULL DEFAULT 'active',
            filed_by text,
            filed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE app_user (
            id uuid PRIMARY KEY,
            username text NOT NULL UNIQUE,
            display_name text NOT NULL,
            department_code text REFERENCES department (code),
            roles text[] NOT NULL,
            password_hash text NOT NULL,
            status text NOT NULL DEFAULT 'active',
            failed_logins integer NOT NULL DEFAULT 0,
            locked_until timestamptz,
            password_changed_at timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
