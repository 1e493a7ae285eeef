"""The event pipeline's tables in every service's schema, and how an existing schema grows into them.

`PLATFORM_TABLES_DDL` is what a service's first migration created (outbox, outbox head, one inbox cursor per
source). `PIPELINE_UPGRADES` are the steps since, numbered; `upgrade_pipeline_tables` runs the ones a schema
has not had yet, at every start, in the same locked transaction as the service's own migrations — so every
service, the test services and the bench ones alike, has the same pipeline tables without a migration of its
own for each change here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

PLATFORM_TABLES_DDL = [
    """
    CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        seq bigint UNIQUE,
        type text NOT NULL,
        subject text NOT NULL,
        time timestamptz NOT NULL,
        traceparent text,
        data jsonb NOT NULL,
        published_at timestamptz
    )
    """,
    "CREATE INDEX outbox_unsequenced ON outbox (id) WHERE seq IS NULL",
    "CREATE INDEX outbox_unpublished ON outbox (seq) WHERE seq IS NOT NULL AND published_at IS NULL",
    """
    CREATE TABLE outbox_head (
        only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
        last_seq bigint NOT NULL
    )
    """,
    "INSERT INTO outbox_head (only_row, last_seq) VALUES (true, 0)",
    """
    CREATE TABLE inbox (
        source text PRIMARY KEY,
        last_seq bigint NOT NULL,
        last_event_id uuid,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]

# Step 1: partitions, and a published high-water mark instead of a published_at per row. The relay gives each event the Kafka partition of its aggregate and `prev`, the seq of
# the event before it in that partition, so a consumer keeps one cursor per source partition and replicas
# that split the partitions never wait on each other. A cursor row of partition -1 is the one cursor of a
# schema from before (everything up to its last_seq is handled, in every partition).
# Step 2: quarantine (a poison event is set aside with its error; its aggregate's later events wait behind
# it) and the job ticks (a periodic job runs once per tick, however many replicas).
# Step 3: which replica moved each cursor and ran each job's last tick, and a job's runs since its first tick.
PIPELINE_UPGRADES: list[list[str]] = [
    [
        "ALTER TABLE outbox ADD COLUMN partition integer, ADD COLUMN prev bigint",
        "CREATE INDEX outbox_by_partition ON outbox (partition, seq) WHERE partition IS NOT NULL",
        # Publishing goes in seq order, so how far it got is one number, not a timestamp on every row.
        "ALTER TABLE outbox_head ADD COLUMN published_seq bigint NOT NULL DEFAULT 0",
        "UPDATE outbox_head SET published_seq = coalesce("
        "(SELECT min(seq) - 1 FROM outbox WHERE seq IS NOT NULL AND published_at IS NULL), "
        "(SELECT max(seq) FROM outbox), 0)",
        "DROP INDEX outbox_unpublished",
        "CREATE TABLE outbox_partition_head (partition integer PRIMARY KEY, last_seq bigint NOT NULL, "
        "pruned_through bigint NOT NULL DEFAULT 0)",
        "ALTER TABLE inbox ADD COLUMN partition integer NOT NULL DEFAULT -1, "
        "ADD COLUMN handled bigint NOT NULL DEFAULT 0",
        "ALTER TABLE inbox DROP CONSTRAINT inbox_pkey",
        "ALTER TABLE inbox ADD PRIMARY KEY (source, partition)",
    ],
    [
        """
        CREATE TABLE inbox_quarantine (
            source text NOT NULL,
            seq bigint NOT NULL,
            partition integer,
            event_id uuid NOT NULL,
            type text NOT NULL,
            subject text NOT NULL,
            envelope jsonb NOT NULL,
            error text NOT NULL,
            blocked_by bigint,
            attempts integer NOT NULL DEFAULT 1,
            status text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'retried', 'skipped')),
            quarantined_at timestamptz NOT NULL DEFAULT now(),
            resolved_at timestamptz,
            resolved_by text,
            PRIMARY KEY (source, seq)
        )
        """,
        "CREATE INDEX inbox_quarantine_held ON inbox_quarantine (source, subject, seq) WHERE status = 'held'",
        "CREATE TABLE job_tick (job text PRIMARY KEY, last_tick bigint NOT NULL)",
    ],
    [
        # Step 3: who moved a cursor or took a tick, and how many ticks a job has run since its first: with
        # replicas, the platform office sees the partitions split and each tick run once.
        "ALTER TABLE inbox ADD COLUMN handled_by text",
        "ALTER TABLE job_tick ADD COLUMN first_tick bigint, ADD COLUMN runs bigint NOT NULL DEFAULT 0, "
        "ADD COLUMN ran_by text, ADD COLUMN ran_at timestamptz",
        "UPDATE job_tick SET first_tick = last_tick, runs = 1",
    ],
    [
        # Step 4: the payload is stored as the JSON text the writer serialised (json: checked, kept as is)
        # rather than parsed into jsonb and printed back for every message the relay sends; and the unique
        # index on the random event id goes — nothing looks an event up by id here, the id is 122 random
        # bits made once per emit, and the index cost two inserts at random pages per event (the write and
        # the relay's seq update). Together ≈ 20 % of PostgreSQL's CPU per event in the outbox bench.
        # The seq index becomes partial: a row is written without a seq, and the full index took a NULL
        # entry for every write that no query reads (every seq condition implies NOT NULL).
        "ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_event_id_key",
        "ALTER TABLE outbox ALTER COLUMN data TYPE json USING data::text::json",
        "CREATE UNIQUE INDEX outbox_seq ON outbox (seq) WHERE seq IS NOT NULL",
        "ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_seq_key",
    ],
]

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS pipeline_tables_version (version integer NOT NULL)"


async def upgrade_pipeline_tables(conn: Any) -> int:
    """Run the upgrade steps this schema has not had (search_path set to it); the version it is at now."""
    await conn.execute(text(_VERSION_TABLE))
    version = (await conn.execute(text("SELECT max(version) FROM pipeline_tables_version"))).scalar()
    current = int(version or 0)
    for number, step in enumerate(PIPELINE_UPGRADES, start=1):
        if number <= current:
            continue
        for ddl in step:
            await conn.execute(text(ddl))
        await conn.execute(text("INSERT INTO pipeline_tables_version (version) VALUES (:v)"), {"v": number})
        current = number
    await _share_with_outbox_writers(conn)
    return current


async def _share_with_outbox_writers(conn: Any) -> None:
    """A service whose connections run as a role of their own (audit-svc's append-only writer) was granted
    the outbox and inbox by its own migration; the pipeline's newer tables go to the same roles."""
    grantees = (
        await conn.execute(
            text(
                "SELECT DISTINCT grantee FROM information_schema.role_table_grants WHERE table_schema = "
                "current_schema() AND table_name = 'outbox' AND privilege_type = 'INSERT' "
                "AND grantee <> current_user"
            )
        )
    ).scalars()
    for grantee in grantees:
        role = grantee.replace('"', '""')
        await conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {", ".join(_NEWER_TABLES)} TO "{role}"'))


_NEWER_TABLES = ("outbox_partition_head", "inbox_quarantine", "job_tick", "pipeline_tables_version")
