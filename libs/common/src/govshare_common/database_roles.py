"""Each service's own database role, so that schema isolation is PostgreSQL's rule and not a convention.

A service connects as `<database>_<service>`, a login role that owns its schema and has no right on any other;
audit-svc's runtime connections use `<database>_audit_writer`, a login role that is a member of no other role,
so it has nothing to `SET ROLE` to, and that audit-svc itself grants only what appending needs. `provision`
makes the roles and schemas with an administrator's URL (`govshare up`, the tests' platform); a service is
only ever handed the URL of its own role.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from govshare_common.settings import to_async_url

SCHEMA_OWNERS = ("gateway", "catalog", "request", "exchange", "audit")
AUDIT_WRITER = "audit_writer"
LOGINS = (*SCHEMA_OWNERS, AUDIT_WRITER)
_ROLE_OPTIONS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"


def role_name(database: str, login: str) -> str:
    return f"{database}_{login}"


def with_login(url: str, role: str, password: str) -> str:
    """`url` (host, port, database, query kept) signed in as `role`."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = f"{quote(role, safe='')}:{quote(password, safe='')}"
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def login_of(url: str) -> str | None:
    return urlsplit(url).username


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def asyncpg_dsn(url: str) -> str:
    return to_async_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


async def provision(admin_url: str, password_of: Callable[[str], str]) -> dict[str, str]:
    """Make (or bring up to date) every service's role and schema in the database of `admin_url`, which must
    be able to create roles; returns the URL each login connects with (`password_of(login)` is its password).
    Safe to run on every start: existing roles get their password and options again, and objects a schema
    holds from before it had its own role change owner."""
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        database = await conn.fetchval("SELECT current_database()")
        urls: dict[str, str] = {}
        async with conn.transaction():
            # Roles are cluster-wide: tests provision many databases of one cluster side by side.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('govshare:provision-roles'))")
            await conn.execute(f"REVOKE ALL ON DATABASE {_ident(database)} FROM PUBLIC")
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            for login in LOGINS:
                role = role_name(database, login)
                password = password_of(login)
                exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
                verb = "ALTER" if exists else "CREATE"
                await conn.execute(f"{verb} ROLE {_ident(role)} {_ROLE_OPTIONS} PASSWORD {_literal(password)}")
                for (granted,) in await conn.fetch(
                    "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                    "JOIN pg_roles me ON me.oid = m.member WHERE me.rolname = $1",
                    role,
                ):
                    await conn.execute(f"REVOKE {_ident(granted)} FROM {_ident(role)}")
                # TEMPORARY: ingest stages its rows in temporary tables.
                await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {_ident(database)} TO {_ident(role)}")
                urls[login] = with_login(admin_url, role, password)
            for schema in SCHEMA_OWNERS:
                await _own_schema(conn, schema, role_name(database, schema))
        return urls
    finally:
        await conn.close()


async def _own_schema(conn: asyncpg.Connection, schema: str, role: str) -> None:
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)} AUTHORIZATION {_ident(role)}")
    await conn.execute(f"ALTER SCHEMA {_ident(schema)} OWNER TO {_ident(role)}")
    await conn.execute(f"REVOKE ALL ON SCHEMA {_ident(schema)} FROM PUBLIC")
    # A schema made before the roles (an older data folder) holds objects of the administrator.
    relations = await conn.fetch(
        "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relowner <> $2::regrole "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass "
        "AND d.deptype IN ('a', 'i') AND c.relkind = 'S')",
        schema,
        role,
    )
    for name, kind in relations:
        what = {"S": "SEQUENCE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}.get(kind, "TABLE")
        await conn.execute(f"ALTER {what} {_ident(schema)}.{_ident(name)} OWNER TO {_ident(role)}")
    functions = await conn.fetch(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = $1 AND p.proowner <> $2::regrole",
        schema,
        role,
    )
    for (signature,) in functions:
        await conn.execute(f"ALTER ROUTINE {signature} OWNER TO {_ident(role)}")
    types = await conn.fetch(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = $1 AND t.typtype IN ('e', 'd') AND t.typowner <> $2::regrole",
        schema,
        role,
    )
    for (name,) in types:
        await conn.execute(f"ALTER TYPE {_ident(schema)}.{_ident(name)} OWNER TO {_ident(role)}")


async def let_role_make_its_schema(owner_url: str, role: str) -> None:
    """Where the roles are made by someone else (CloudNativePG's managed roles on Kubernetes), the database's
    owner lets a service's role connect, stage temporary tables and create its own schema, which its migrations
    then make: the schema and everything in it is the role's, as `provision` arranges on one machine."""
    conn = await asyncpg.connect(asyncpg_dsn(owner_url))
    try:
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {_ident(database)} TO {_ident(role)}")
    finally:
        await conn.close()


def database_settings(service: str, urls: dict[str, str]) -> dict[str, str]:
    """The database settings of `service` (`database_url`, and for audit-svc `database_owner_url`), given the
    URLs `provision` returned; empty for a service without a schema of its own."""
    if service == "audit":
        return {"database_url": urls[AUDIT_WRITER], "database_owner_url": urls["audit"]}
    if service in SCHEMA_OWNERS:
        return {"database_url": urls[service]}
    return {}
