"""catalog: federation downward — which feed rows a child platform may read.

`shown_below`: the resource was, at some change, a live resource shared across levels (`cross_level`). Kept
once set, so a child that mirrored it is told when it is withdrawn or no longer cross-level (a tombstone to the
child), while a resource never shared across levels is never named to a child at all.
"""

from alembic import op

revision = "catalog_0006"
down_revision = "catalog_0005"


def upgrade() -> None:
    op.execute("ALTER TABLE federation_feed ADD COLUMN shown_below boolean NOT NULL DEFAULT false")
    op.execute(
        "UPDATE federation_feed SET shown_below = true "
        "WHERE kind = 'upsert' AND coalesce((snapshot->>'cross_level')::boolean, false)"
    )
    op.execute("CREATE INDEX federation_feed_below ON federation_feed (seq) WHERE shown_below")
