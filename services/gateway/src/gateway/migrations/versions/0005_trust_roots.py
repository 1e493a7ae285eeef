"""gateway: signing keys that retire after their last token expired; admins' second factor; credential
failure counters (per account and address, and per account) shared by every replica."""

from alembic import op

revision = "gateway_0005"
down_revision = "gateway_0004"


def upgrade() -> None:
    # retired_at is now when a key leaves the JWKS: set at rotation to the moment its last token expires.
    op.execute("ALTER TABLE signing_key ADD COLUMN signing_until timestamptz")
    op.execute(
        """
        CREATE TABLE second_factor (
            user_id uuid PRIMARY KEY REFERENCES app_user (id) ON DELETE CASCADE,
            secret_wrapped bytea NOT NULL,
            enrolled_at timestamptz NOT NULL,
            confirmed_at timestamptz,
            last_step bigint NOT NULL DEFAULT 0
        )
        """
    )
    op.execute(
        """
        CREATE TABLE recovery_code (
            user_id uuid NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
            code_hash text NOT NULL,
            used_at timestamptz,
            PRIMARY KEY (user_id, code_hash)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE credential_failure (
            scope text PRIMARY KEY,
            failures integer NOT NULL,
            first_at timestamptz NOT NULL,
            locked_until timestamptz
        )
        """
    )
