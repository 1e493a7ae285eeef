"""Checks made before anything is started, so a bad setting fails in a second with a message that says
what to change, instead of as a service crash-loop later."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit, urlunsplit

from govshare_stack import procs
from govshare_stack.errors import StackError
from govshare_stack.home import StackHome
from govshare_stack.ports import port_is_free, split_host_port, tcp_reachable


def check_not_running(home: StackHome) -> None:
    stack = home.read_stack()
    if stack and procs.pid_alive(stack.get("supervisor_pid")):
        raise StackError(
            f"govshare 已在运行 / govshare is already running for {home.root} "
            f"(pid {stack['supervisor_pid']}, gateway {stack.get('gateway_url', '?')}). "
            "Stop it first (Ctrl-C in its terminal, or kill that pid), or use another GOVSHARE_HOME."
        )


def stop_leftover_door(home: StackHome) -> None:
    """A `govshare up` killed hard leaves nginx's workers running (they outlive their master) on the door's
    ports: their process group, recorded in the stale stack.json, is killed before anything starts again."""
    stack = home.read_stack()
    if not stack or procs.pid_alive(stack.get("supervisor_pid")):
        return
    door = stack.get("door") or {}
    if door.get("pid"):
        procs.kill_group(int(door["pid"]))


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    if not port_is_free(port, host):
        suggestion = next((p for p in range(port + 1, min(port + 200, 65536)) if port_is_free(p, host)), None)
        example = f" (e.g. GOVSHARE_GATEWAY_PORT={suggestion}, free right now)" if suggestion else ""
        raise StackError(
            f"端口 {port} 已被占用 / port {port} is already in use on {host}: set GOVSHARE_GATEWAY_PORT to a "
            f"free port{example}, or stop whatever is listening there "
            f"(`ss -ltnp 'sport = :{port}'` shows it)."
        )


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe_database(url: str) -> str:
    """'database govshare at db.example:5432 as user postgres', without secrets."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["localhost"])[0]
    port = parts.port or int((query.get("port") or ["5432"])[0])
    where = f"socket {host}" if host.startswith("/") else f"{host}:{port}"
    name = parts.path.lstrip("/") or parts.username or "postgres"
    return f"database {name!r} at {where} as user {parts.username or 'postgres'!r}"


async def check_database_url(url: str, connect_timeout: float = 5.0) -> None:
    """Connect once with asyncpg; raise StackError naming the database if that fails."""
    import asyncpg

    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise StackError(
            f"GOVSHARE_DATABASE_URL must be a postgresql:// URL, got {mask_url(url)!r}. "
            "Example: postgresql://user:password@db-host:5432/govshare"
        )
    dsn = "postgresql://" + rest
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn, timeout=connect_timeout), connect_timeout + 1)
    except (OSError, TimeoutError, asyncpg.PostgresError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {connect_timeout:.0f} s"
        raise StackError(
            f"无法连接数据库 / cannot connect to the {describe_database(url)} given by "
            f"GOVSHARE_DATABASE_URL ({mask_url(url)}): {reason}. Check that PostgreSQL is running there and "
            "the URL is right, or unset GOVSHARE_DATABASE_URL to use the embedded PostgreSQL."
        ) from None
    await conn.close()


def check_kafka(bootstrap_servers: str, timeout: float = 3.0) -> None:
    """At least one bootstrap server must accept a TCP connection (a client needs only one to start)."""
    addresses = [a for a in (s.strip() for s in bootstrap_servers.split(",")) if a]
    if not addresses:
        raise StackError("GOVSHARE_KAFKA_BOOTSTRAP_SERVERS is set but empty: give host:port[,host:port].")
    unreachable: list[str] = []
    for address in addresses:
        try:
            host, port = split_host_port(address, 9092)
        except ValueError:
            raise StackError(
                f"GOVSHARE_KAFKA_BOOTSTRAP_SERVERS has a bad address {address!r}: expected host:port."
            ) from None
        if not tcp_reachable(host, port, timeout):
            unreachable.append(f"{host}:{port}")
    if len(unreachable) == len(addresses):
        raise StackError(
            f"无法连接 Kafka / cannot reach the Kafka broker(s) {', '.join(unreachable)} given by "
            f"GOVSHARE_KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers} "
            f"(no TCP connection within {timeout:.0f} s). "
            "Check the broker is running and reachable from here, or unset the variable to use the embedded "
            "Tansu broker."
        )
