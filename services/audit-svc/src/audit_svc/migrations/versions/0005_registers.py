"""audit: the registers supervision keeps for each department — its accountable people (000 Art.24, 001 Art.31),
its yearly reports and monthly progress (002 Art.17, plan III.5; 004 Art.29), its information systems
(000 Art.11; 002 plan III.5) — the published yearly evaluations, and whom a notice is addressed to."""

from alembic import op

revision = "audit_0005"
down_revision = "audit_0004"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE accountable_person (
            department_code text NOT NULL,
            role text NOT NULL CHECK (role IN ('head_of_department', 'chief_data_officer', 'resource_administrator')),
            name text NOT NULL,
            title text,
            contact text,
            updated_by text NOT NULL,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (department_code, role)
        )
        """
    )
    # Every change kept: who was on file when (a notice names the person then on file).
    op.execute(
        """
        CREATE TABLE accountable_change (
            id bigserial PRIMARY KEY,
            department_code text NOT NULL,
            role text NOT NULL,
            name text NOT NULL,
            title text,
            contact text,
            changed_by text NOT NULL,
            changed_at timestamptz NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE department_report (
            id uuid PRIMARY KEY,
            department_code text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('yearly', 'monthly')),
            year integer NOT NULL,
            month integer NOT NULL DEFAULT 0,
            content text NOT NULL,
            key_tasks jsonb NOT NULL DEFAULT '[]',
            due_on date NOT NULL,
            submitted_by text NOT NULL,
            submitted_at timestamptz NOT NULL,
            submitted_on date NOT NULL,
            UNIQUE (department_code, kind, year, month)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE department_system (
            id uuid PRIMARY KEY,
            department_code text NOT NULL,
            name text NOT NULL,
            legacy boolean NOT NULL,
            status text NOT NULL CHECK (status IN ('planned', 'integrated', 'connected', 'retired')),
            connected_on date,
            collaborative_apps integer NOT NULL DEFAULT 0,
            updated_by text NOT NULL,
            updated_at timestamptz NOT NULL,
            UNIQUE (department_code, name)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE published_evaluation (
            year integer PRIMARY KEY,
            report jsonb NOT NULL,
            published_by text NOT NULL,
            published_at timestamptz NOT NULL
        )
        """
    )
    op.execute("ALTER TABLE notice ADD COLUMN addressed_role text, ADD COLUMN addressed_name text")
    # The writer role's rights on these tables are granted at every start (ledger.grant_writer).
