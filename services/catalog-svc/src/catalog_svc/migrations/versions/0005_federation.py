"""catalog: federation — peer platforms, the change feed a parent pulls, the nonces seen, mirrored resources.

The feed keeps one row per resource (its latest state: the live snapshot, or a tombstone once withdrawn), each
change given the next number of `federation_feed_seq`; the catalog published before this migration is fed as
it stands, so a parent that peers later receives all of it.
"""

from alembic import op

revision = "catalog_0005"
down_revision = "catalog_0004"


def upgrade() -> None:
    # A child platform's resource mirrored here: its division code (None for this platform's own resources).
    op.execute("ALTER TABLE resource ADD COLUMN origin_division text")
    op.execute(
        """
        CREATE TABLE federation_peer (
            division_code text PRIMARY KEY,
            name text NOT NULL,
            level text NOT NULL,
            relation text NOT NULL CHECK (relation IN ('parent', 'child')),
            base_url text NOT NULL,
            public_key text NOT NULL,
            registered_by text NOT NULL,
            registered_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            -- a child's feed as this platform has pulled it
            cursor bigint NOT NULL DEFAULT 0,
            peer_head bigint,
            received_changes bigint NOT NULL DEFAULT 0,
            last_attempt_at timestamptz,
            last_success_at timestamptz,
            last_error text,
            last_error_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE federation_nonce (
            keyid text NOT NULL,
            nonce text NOT NULL,
            seen_at timestamptz NOT NULL,
            PRIMARY KEY (keyid, nonce)
        )
        """
    )
    op.execute("CREATE INDEX federation_nonce_seen ON federation_nonce (seen_at)")
    op.execute("CREATE SEQUENCE federation_feed_seq")
    op.execute(
        """
        CREATE TABLE federation_feed (
            resource_id uuid PRIMARY KEY,
            seq bigint NOT NULL UNIQUE,
            kind text NOT NULL CHECK (kind IN ('upsert', 'tombstone')),
            snapshot jsonb NOT NULL,
            origin jsonb,
            changed_at timestamptz NOT NULL
        )
        """
    )
    # Which child each mirrored resource came through and where it was compiled (a grandchild's, passed on).
    op.execute(
        """
        CREATE TABLE federation_mirror (
            resource_id uuid PRIMARY KEY REFERENCES resource (id),
            peer text NOT NULL REFERENCES federation_peer (division_code),
            origin jsonb NOT NULL,
            origin_code text NOT NULL,
            seq bigint NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX federation_mirror_peer ON federation_mirror (peer)")
    op.execute(
        "INSERT INTO federation_feed (resource_id, seq, kind, snapshot, origin, changed_at) "
        "SELECT resource_id, nextval('federation_feed_seq'), 'upsert', snapshot, NULL, now() "
        "FROM (SELECT resource_id, snapshot FROM published_snapshot ORDER BY resource_id) AS live"
    )
