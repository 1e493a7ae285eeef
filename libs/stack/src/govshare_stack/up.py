"""`govshare up`: the whole platform on one machine, in the foreground.

Order: preflight checks → embedded PostgreSQL and Tansu (unless external ones are configured) → every service
→ wait for /readyz → stack.json and the table → optional demo seeding → wait for Ctrl-C / SIGTERM → stop
services, then Tansu, then PostgreSQL. Whatever was started is stopped again on every way out.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from govshare_common.database_roles import database_settings, provision
from govshare_common.purpose_keys import MasterSecretRefused, check_master_secret
from govshare_stack import demo, preflight, table
from govshare_stack.dev_tls import LocalCA
from govshare_stack.embedded import Broker, EmbeddedError, EmbeddedPostgres, start_broker, start_postgres
from govshare_stack.errors import StackError, StartupFailed
from govshare_stack.front_door import FrontDoor
from govshare_stack.home import StackHome, new_password, new_secret
from govshare_stack.infrastructure import InfrastructureWatch
from govshare_stack.ports import pick_ports
from govshare_stack.supervisor import ProgramSpec, ServiceProcess, Supervisor, service_specs

from gateway.door_conf import DoorLayout

DEFAULT_GATEWAY_PORT = 8000
DEFAULT_GATEWAY_TLS_PORT = 8443
FIRST_INTERNAL_PORT = 8101
PREFERRED_KAFKA_PORT = 9092
DATABASE_NAME = "govshare"
DEFAULT_PROFILE = "zhonglou"


@dataclass(frozen=True)
class UpOptions:
    demo: bool = False
    ready_timeout: float = 60.0
    stop_grace: float = 10.0
    replicas: int = 1  # processes of every service


def say(message: str = "") -> None:
    print(message, flush=True)


def gateway_port_from(environ: Mapping[str, str]) -> int:
    return _port_setting(environ, "GOVSHARE_GATEWAY_PORT", DEFAULT_GATEWAY_PORT)


def door_certificates(environ: Mapping[str, str], home: StackHome) -> tuple[Path, Path, Path]:
    """The door's certificate, key and the CA its clients' certificates are checked against: the ones
    GOVSHARE_TLS_CERT, GOVSHARE_TLS_KEY and GOVSHARE_TLS_CLIENT_CA name (production), else a local CA's."""
    given = [environ.get(k, "").strip() for k in ("GOVSHARE_TLS_CERT", "GOVSHARE_TLS_KEY", "GOVSHARE_TLS_CLIENT_CA")]
    if all(given):
        return Path(given[0]), Path(given[1]), Path(given[2])
    if any(given):
        raise StackError("Set all of GOVSHARE_TLS_CERT, GOVSHARE_TLS_KEY and GOVSHARE_TLS_CLIENT_CA, or none.")
    ca = LocalCA.ensure(home.root / "tls")
    cert, key = ca.server_certificate()
    return cert, key, ca.cert_path


def door_workers_from(environ: Mapping[str, str]) -> int:
    """nginx worker processes: one per core, as many as GOVSHARE_DOOR_WORKERS says."""
    raw = environ.get("GOVSHARE_DOOR_WORKERS", "").strip()
    if not raw:
        return max(1, min(os.cpu_count() or 1, 8))
    if not raw.isdigit() or not 0 < int(raw) <= 64:
        raise StackError(f"GOVSHARE_DOOR_WORKERS must be a number of processes (1-64), got {raw!r}.")
    return int(raw)


def trusted_proxies_from(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The callers whose X-Forwarded-For the door believes: the gateway's own rule (GOVSHARE_TRUSTED_PROXIES)."""
    from govshare_common.settings import Settings

    raw = environ.get("GOVSHARE_TRUSTED_PROXIES")
    if not raw:
        return tuple(Settings.model_fields["trusted_proxies"].get_default(call_default_factory=True))
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise StackError(f"GOVSHARE_TRUSTED_PROXIES must be a JSON list of addresses, got {raw!r}.")
    return tuple(value)


def first_internal_port_from(environ: Mapping[str, str]) -> int:
    return _port_setting(environ, "GOVSHARE_FIRST_INTERNAL_PORT", FIRST_INTERNAL_PORT, highest=65435)


def _port_setting(environ: Mapping[str, str], name: str, default: int, *, highest: int = 65535) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 < port <= highest:
        raise StackError(f"{name} must be a TCP port number (1-{highest}), got {raw!r}.")
    return port


class _Running:
    """What this run has started, so that exactly that is stopped again."""

    def __init__(self) -> None:
        self.postgres: EmbeddedPostgres | None = None
        self.broker: Broker | None = None
        self.door: FrontDoor | None = None
        self.supervisor: Supervisor | None = None

    def stop(self, home: StackHome, report: Callable[[str], None]) -> None:
        if self.door is not None:
            report("停止 nginx / stopping the front door (nginx) …")
            self.door.stop()
        if self.supervisor is not None:
            report("停止服务 / stopping services …")
            self.supervisor.stop_all()
        if self.broker is not None:
            report("停止 Kafka (Tansu) / stopping Kafka (Tansu) …")
            self.broker.stop()
        if self.postgres is not None:
            report("停止 PostgreSQL / stopping PostgreSQL …")
            try:
                self.postgres.stop()
            except EmbeddedError as exc:
                report(str(exc))
        home.clear_stack(os.getpid())


DEMO_SECOND_FACTOR_GRACE_HOURS = 24 * 365


def new_master_secret() -> str:
    return secrets.token_urlsafe(48)


def _master_secret_env(env_in: Mapping[str, str], home: StackHome) -> dict[str, str]:
    """How the services get the master secret: as configured, else generated once into the data folder (and
    passed as a file path, so the value is in no process's environment)."""
    if env_in.get("GOVSHARE_MASTER_SECRET"):
        check_master_secret(env_in["GOVSHARE_MASTER_SECRET"])
        return {"GOVSHARE_MASTER_SECRET": env_in["GOVSHARE_MASTER_SECRET"]}
    path = env_in.get("GOVSHARE_MASTER_SECRET_FILE") or ""
    if not path:
        # A data folder from before the master secret keeps the secret its keys and hashes were made with.
        legacy = home.secrets / "internal-secret"
        home.secret("master-secret", lambda: legacy.read_text().strip() if legacy.exists() else new_master_secret())
        path = str(home.secrets / "master-secret")
    try:
        check_master_secret(Path(path).read_text().strip(), setting=f"the master secret in {path}")
    except OSError as exc:
        raise MasterSecretRefused(f"cannot read GOVSHARE_MASTER_SECRET_FILE {path}: {exc.strerror}") from None
    return {"GOVSHARE_MASTER_SECRET_FILE": path}


async def run_up(options: UpOptions, environ: Mapping[str, str] | None = None) -> int:
    env_in = dict(os.environ if environ is None else environ)
    home = StackHome.from_env(env_in)
    gateway_port = gateway_port_from(env_in)
    external_db = env_in.get("GOVSHARE_DATABASE_URL", "").strip() or None
    external_kafka = env_in.get("GOVSHARE_KAFKA_BOOTSTRAP_SERVERS", "").strip() or None

    preflight.check_not_running(home)
    preflight.stop_leftover_door(home)
    preflight.check_port_free(gateway_port)
    if external_db:
        await preflight.check_database_url(external_db)
    if external_kafka:
        preflight.check_kafka(external_kafka)
    try:
        home.prepare()
    except OSError as exc:
        raise StackError(
            f"无法创建数据目录 / cannot create the data folder {home.root}: {exc.strerror}. "
            "Set GOVSHARE_HOME to a folder you can write to."
        ) from None

    try:
        master_secret_env = _master_secret_env(env_in, home)
    except MasterSecretRefused as exc:
        raise StackError(str(exc)) from None

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    running = _Running()
    try:
        return await _run(
            options, env_in, master_secret_env, home, gateway_port, external_db, external_kafka, stop, running
        )
    except StartupFailed as exc:
        # Said before the teardown messages, so the cause is not scrolled away behind them.
        print(f"govshare: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    finally:
        running.stop(home, say)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _run(
    options: UpOptions,
    env_in: dict[str, str],
    master_secret_env: dict[str, str],
    home: StackHome,
    gateway_port: int,
    external_db: str | None,
    external_kafka: str | None,
    stop: asyncio.Event,
    running: _Running,
) -> int:
    started = datetime.now(UTC)
    say(f"govshare: 数据目录 / data folder {home.root}")

    admin_password = env_in.get("GOVSHARE_ADMIN_PASSWORD")
    admin_password_created = False
    if not admin_password:
        admin_password, admin_password_created = home.secret("admin-password", new_password)

    if external_db:
        database_url = external_db
    else:
        say("启动 PostgreSQL / starting embedded PostgreSQL …")
        try:
            running.postgres = start_postgres(home.pgdata)
            database_url = running.postgres.create_database(DATABASE_NAME)
        except EmbeddedError as exc:
            raise StartupFailed(f"PostgreSQL 启动失败 / embedded PostgreSQL failed to start: {exc}") from None
    if stop.is_set():
        return 0
    say("数据库角色 / one database role per service …")
    role_urls = await _provision_roles(database_url, home)

    if external_kafka:
        bootstrap = external_kafka
    else:
        say("启动 Kafka (Tansu) / starting embedded Kafka broker (Tansu) …")
        preferred = _port_setting(env_in, "GOVSHARE_EMBEDDED_KAFKA_PORT", PREFERRED_KAFKA_PORT)
        kafka_port = pick_ports(1, [preferred], exclude=[gateway_port])[0]
        try:
            running.broker = start_broker(kafka_port, log_path=home.log_of("kafka"))
        except EmbeddedError as exc:
            raise StartupFailed(f"Tansu 启动失败 / the embedded Kafka broker failed to start: {exc}") from None
        bootstrap = running.broker.bootstrap_servers
    if stop.is_set():
        return 0

    specs = service_specs(env_in, replicas=options.replicas)
    # nginx listens on the gateway port; the gateway (identity and the decision endpoint) is internal too.
    ports = pick_ports(
        len(specs) + 1,
        range(first_internal_port_from(env_in), first_internal_port_from(env_in) + 100),
        exclude=[gateway_port, running.broker.port if running.broker else 0],
    )
    port_of = {s.name: p for s, p in zip(specs, ports[:-1], strict=True)}
    services = [
        ServiceProcess(s, port_of[s.name], home.log_of(s.name), env=_database_env(s.name, role_urls)) for s in specs
    ]
    internal_urls = {s.name: s.url for s in services}
    tls_cert, tls_key, client_ca = door_certificates(env_in, home)
    tls_port = (
        _port_setting(env_in, "GOVSHARE_GATEWAY_TLS_PORT", 0)
        or pick_ports(
            1, [DEFAULT_GATEWAY_TLS_PORT], exclude=[gateway_port, *ports, running.broker.port if running.broker else 0]
        )[0]
    )
    door = FrontDoor(
        DoorLayout(
            listen_port=gateway_port,
            tls_port=tls_port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            client_ca=client_ca,
            gateway_url=internal_urls["gateway"],
            service_urls=internal_urls,
            access_log=home.root / "journal" / "door-access" / "current.jsonl",
            error_log=home.log_of("nginx"),
            worker_processes=door_workers_from(env_in),
            trusted_proxies=trusted_proxies_from(env_in),
        ),
        log_path=home.log_of("nginx"),
    )
    # What services call the gateway on (the console, on behalf of its user) is the door, like any client.
    # The gateway's internal listener (its /internal/... routes, never served at the door).
    service_urls = {**internal_urls, "gateway": door.url, "gateway-internal": f"http://127.0.0.1:{ports[-1]}"}

    child_env = dict(env_in)
    # Only the administrator's URL, which no service gets: each has its own role's (_database_env).
    child_env.pop("GOVSHARE_DATABASE_URL", None)
    child_env.update(
        GOVSHARE_HOME=str(home.root),
        GOVSHARE_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        GOVSHARE_SERVICE_URLS=json.dumps(service_urls),
        **master_secret_env,
        GOVSHARE_ADMIN_PASSWORD=admin_password,
        GOVSHARE_ACCESS_JOURNAL_DIR=str(door.layout.access_log.parent),
        GOVSHARE_PROFILE=env_in.get("GOVSHARE_PROFILE") or DEFAULT_PROFILE,
        PYTHONUNBUFFERED="1",
    )
    # Where peer platforms reach this one (what they sign); a real site sets its public https:// address.
    child_env.setdefault("GOVSHARE_FEDERATION_PUBLIC_URL", door.url)
    # Seven interpreters importing the same large dependency tree: without cached bytecode each one compiles
    # it from source (~4x slower start, measured 9.9 s → 2.6 s per service here), so let them write .pyc.
    child_env.pop("PYTHONDONTWRITEBYTECODE", None)
    if options.demo:
        # The demo's administrators sign in with their password for a year before they must enrol a second
        # factor; a real platform keeps the default (24 hours from an account's creation).
        child_env.setdefault("GOVSHARE_SECOND_FACTOR_GRACE_HOURS", str(DEMO_SECOND_FACTOR_GRACE_HOURS))
    # Services call each other on 127.0.0.1; an HTTP(S)_PROXY from the shell must not capture that.
    for key in ("NO_PROXY", "no_proxy"):
        existing = [h for h in child_env.get(key, "").split(",") if h]
        child_env[key] = ",".join([*existing, *(h for h in ("127.0.0.1", "localhost") if h not in existing)])

    supervisor = Supervisor(services, child_env, report=say, grace=options.stop_grace)
    running.supervisor = supervisor
    say(f"启动服务 / starting {len(services)} services …")
    supervisor.start_all()
    say(f"启动 nginx / starting the front door (nginx) on {door.url} …")
    try:
        door.start()
    except EmbeddedError as exc:
        raise StartupFailed(f"nginx 启动失败 / the front door (nginx) failed to start: {exc}") from None
    running.door = door

    gateway_url = door.url
    record: dict[str, Any] = {
        "version": 1,
        "state": "starting",
        "supervisor_pid": os.getpid(),
        "home": str(home.root),
        "started_at": started.isoformat(timespec="seconds"),
        "gateway_url": gateway_url,
        "console_url": f"{gateway_url}/console/",
        "docs_url": f"{gateway_url}/docs",
        "logs": str(home.logs) + os.sep,
        "demo_credentials": str(home.demo_credentials) if options.demo else None,
        "services": {},
        "postgres": {
            "embedded": running.postgres is not None,
            "pid": running.postgres.pid if running.postgres else None,
            "url": preflight.mask_url(database_url),
            "pgdata": str(running.postgres.pgdata) if running.postgres else None,
        },
        "kafka": {
            "embedded": running.broker is not None,
            "pid": running.broker.pid if running.broker else None,
            "bootstrap_servers": bootstrap,
        },
        "door": {
            "pid": door.pid,
            "url": door.url,
            "tls_url": door.tls_url,
            "client_ca": str(client_ca),
            "access_log": str(door.layout.access_log),
        },
    }

    infrastructure = InfrastructureWatch(running, report=say, on_change=lambda: save())

    def save() -> None:
        record["services"] = {
            s.name: {
                "module": s.spec.module,
                "pid": s.pid,
                "processes": s.spec.workers,
                "port": s.port,
                "url": s.url,
                "log": str(s.log_path),
                "restarts": s.restarts,
            }
            for s in services
        }
        if running.postgres is not None:
            record["postgres"].update(pid=running.postgres.pid, restarts=infrastructure.restarts["postgres"])
        if running.broker is not None:
            record["kafka"].update(pid=running.broker.pid, restarts=infrastructure.restarts["kafka"])
        if running.door is not None:
            record["door"].update(pid=running.door.pid, restarts=infrastructure.restarts["door"])
        home.write_stack(record)

    save()
    await supervisor.wait_ready(options.ready_timeout, stop)
    if stop.is_set():
        return 0
    record["state"] = "ready"
    record["ready_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    save()

    elapsed = (datetime.now(UTC) - started).total_seconds()
    statuses = {s.name: table.READY for s in services}
    statuses["postgres"] = table.RUNNING if running.postgres else table.EXTERNAL
    statuses["kafka"] = table.RUNNING if running.broker else table.EXTERNAL
    statuses["door"] = table.RUNNING
    say()
    say(f"govshare 已就绪 / govshare is ready ({elapsed:.1f} s)")
    say()
    say(table.render(table.rows_for(record, statuses)))
    say()
    say(table.footer(record))
    if admin_password_created:
        say()
        say(
            f"平台管理员初始密码 / initial platform admin password: {admin_password}\n"
            f"  (shown once; kept in {home.secrets / 'admin-password'}, mode 0600)"
        )

    if options.demo:
        await _seed_demo(record, service_urls, admin_password, home, [s.module for s in specs], stop)
        if "connector" in [s.module for s in specs]:
            from connector.demo import demo_programs

            # The demo departments' connectors run as their own programs, supervised like the services.
            for name, command, port in demo_programs(home.root, record["gateway_url"]):
                program = ServiceProcess(
                    ProgramSpec(name, "connector", optional=True, command=tuple(command)), port, home.log_of(name)
                )
                supervisor.services.append(program)
                program.start(child_env)
                say(f"  演示前置机 / demo connector {name} (config in {home.root / 'connectors'})")
            save()

    say()
    say("按 Ctrl-C 停止 / press Ctrl-C to stop")
    watching = asyncio.ensure_future(infrastructure.watch(stop))
    try:
        await supervisor.watch(stop, save)
    finally:
        stop.set()
        await watching
    say()
    return 0


async def _provision_roles(database_url: str, home: StackHome) -> dict[str, str]:
    def password_of(login: str) -> str:
        return home.secret(f"database-{login}", new_secret)[0]

    try:
        return await provision(database_url, password_of)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StartupFailed(
            f"数据库角色创建失败 / could not create the services' database roles with "
            f"{preflight.mask_url(database_url)}: {exc}. GOVSHARE_DATABASE_URL must be an account that may "
            "create roles (CREATEROLE) and owns the database."
        ) from None


def _database_env(service: str, role_urls: dict[str, str]) -> dict[str, str]:
    return {f"GOVSHARE_{k.upper()}": v for k, v in database_settings(service, role_urls).items()}


async def _seed_demo(
    record: Mapping[str, Any],
    service_urls: dict[str, str],
    admin_password: str,
    home: StackHome,
    modules: list[str],
    stop: asyncio.Event,
) -> None:
    import httpx

    say()
    say("演示数据 / seeding the demo …")
    try:
        demo.discover(modules)
    except Exception as exc:
        say(f"演示数据失败 / demo seeding failed to load its steps: {type(exc).__name__}: {exc}")
        return
    if not demo.registered_steps():
        say("  (no demo steps are registered yet)")
    async with httpx.AsyncClient(base_url=record["gateway_url"], timeout=30.0, trust_env=False) as client:
        ctx = demo.DemoContext(
            gateway_url=record["gateway_url"],
            client=client,
            admin_password=admin_password,
            home=home.root,
            service_urls=service_urls,
        )
        seeding = asyncio.ensure_future(demo.run_demo(ctx, home.demo_state, home.demo_credentials, report=say))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([seeding, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not seeding.done():
            seeding.cancel()
            say("演示数据中断 / demo seeding interrupted; the next `govshare up --demo` resumes it")
            return
        try:
            result = seeding.result()
        except demo.DemoStepFailed as exc:
            say(
                f"演示数据失败 / {exc}. The platform keeps running; finished steps are recorded in "
                f"{home.demo_state} and the next `govshare up --demo` resumes from the failed step."
            )
            return
    skipped = f", {len(result.skipped)} already done" if result.skipped else ""
    say(f"演示数据完成 / demo ready: {len(result.ran)} steps run{skipped}")
    say(f"演示账号 / demo credentials ({home.demo_credentials}):")
    say(json.dumps(result.credentials, ensure_ascii=False, indent=2))
