"""catalog: an update obligation names the resources it concerns; only their submission settles it. The
departments seen onboarded, each given the obligation to compile its catalog."""

from alembic import op

revision = "catalog_0004"
down_revision = "catalog_0003"


def upgrade() -> None:
    # resource_ids empty: the department's catalog as a whole (functions changed: new entries to compile),
    # settled by any submission; otherwise settled once each named resource has been submitted again.
    op.execute("ALTER TABLE obligation ADD COLUMN resource_ids uuid[] NOT NULL DEFAULT '{}'")
    op.execute("ALTER TABLE obligation ADD COLUMN updated_resource_ids uuid[] NOT NULL DEFAULT '{}'")
    op.execute("CREATE TABLE department_onboarding (code text PRIMARY KEY, onboarded_at timestamptz NOT NULL)")
