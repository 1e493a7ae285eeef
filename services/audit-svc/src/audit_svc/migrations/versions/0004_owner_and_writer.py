"""audit: the writer logs in as its own role, and the monthly partitions are made and dropped through two
functions that run as the schema owner and check what they are asked; the checkpoint key leaves the database.

The writer (see audit_svc.ledger.grant_writer) is a member of no role, so it cannot SET ROLE its way to the
owner; these functions are the only DDL it can cause. Dropping needs a month older than six months (the legal
minimum for logs, 网络安全法 Art. 21) whose last entry is behind a recorded drop and a signed checkpoint.
"""

from alembic import op

revision = "audit_0004"
down_revision = "audit_0003"


def upgrade() -> None:
    # Private halves now live in the keyring (audit_svc.signing); the wrapped copies here are retired.
    op.execute("ALTER TABLE audit_signing_key ALTER COLUMN private_key DROP NOT NULL")
    op.execute("UPDATE audit_signing_key SET private_key = NULL")
    op.execute(
        """
        CREATE FUNCTION add_month_partitions(suffix text, range_start timestamptz, range_end timestamptz)
        RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = audit, pg_temp AS $$
        DECLARE
            t text;
        BEGIN
            IF suffix !~ '^y[0-9]{4}m[0-9]{2}$' THEN
                RAISE EXCEPTION 'not a monthly partition suffix: %', suffix;
            END IF;
            FOREACH t IN ARRAY ARRAY['audit_entry', 'audit_subject'] LOOP
                EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               t || '_' || suffix, t, range_start, range_end);
                -- Read directly (retention, verification), written only through the parent.
                EXECUTE format('GRANT SELECT ON %I TO %I', t || '_' || suffix, session_user);
            END LOOP;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION drop_month_partitions(suffix text)
        RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = audit, pg_temp AS $$
        DECLARE
            part text := 'audit_entry_' || suffix;
            last_entry bigint;
            ends timestamptz;
        BEGIN
            IF suffix !~ '^y[0-9]{4}m[0-9]{2}$' THEN
                RAISE EXCEPTION 'not a monthly partition suffix: %', suffix;
            END IF;
            ends := make_timestamptz(substr(suffix, 2, 4)::int, substr(suffix, 7, 2)::int, 1, 0, 0, 0, 'UTC')
                    + interval '1 month';
            IF ends > now() - interval '180 days' THEN
                RAISE EXCEPTION 'audit partition % is not six months old', part USING ERRCODE = 'insufficient_privilege';
            END IF;
            EXECUTE format('SELECT max(position) FROM %I', part) INTO last_entry;
            IF last_entry IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM audit_partition_drop d JOIN audit_checkpoint c ON c.id = d.checkpoint_id
                WHERE d.partition = part AND d.last_position = last_entry AND c.position >= last_entry
            ) THEN
                RAISE EXCEPTION 'audit partition % is not behind a recorded drop and a signed checkpoint', part
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            EXECUTE format('DROP TABLE %I', part);
            EXECUTE format('DROP TABLE %I', 'audit_subject_' || suffix);
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION add_month_partitions(text, timestamptz, timestamptz) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION drop_month_partitions(text) FROM PUBLIC")
