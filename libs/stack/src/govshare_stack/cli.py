"""The `govshare` command line: argument parsing, exit codes, and what is printed.

    govshare up [--demo] [--replicas N]        run the platform in the foreground until Ctrl-C / SIGTERM
    govshare up --demo --federation            two platforms, 常州市 and 钟楼区, peered, in the foreground
    govshare status                            the table for the running stack; exit 0 only if all ready
    govshare service NAME [--host H] [--port P] one service in this process (a container's entrypoint)
    govshare door [--port P] --gateway-url URL  the front door (nginx) beside the gateway (a container's entrypoint)
    govshare migrate [NAME ...]                 bring the services' schemas to their newest revision
    govshare backup --output FILE              an encrypted, consistent backup (database, positions, keys)
    govshare restore FILE                      that backup into an empty data folder; then `govshare up`
    govshare rotate-record-key                 a new key seals the hosted libraries' personal data from now on

Exit codes: 0 fine, 1 the stack did not come up or is not (all) ready, 2 a setting or port must be fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from govshare_stack import procs, table
from govshare_stack.errors import StackError
from govshare_stack.home import StackHome
from govshare_stack.sealed import PASSPHRASE_ENV


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="govshare",
        description="政务信息资源共享交换平台 — run the govshare platform on this machine.",
        epilog=(
            "Environment: GOVSHARE_HOME (data folder, default ./.govshare), "
            "GOVSHARE_GATEWAY_PORT (default 8000), GOVSHARE_DATABASE_URL and "
            "GOVSHARE_KAFKA_BOOTSTRAP_SERVERS (use these instead of the embedded PostgreSQL and Tansu), "
            "GOVSHARE_ADMIN_PASSWORD, GOVSHARE_MASTER_SECRET (or GOVSHARE_MASTER_SECRET_FILE), GOVSHARE_PROFILE."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    up = commands.add_parser("up", help="start every service (and embedded PostgreSQL + Kafka) in the foreground")
    up.add_argument("--demo", action="store_true", help="seed demo departments, users and data once ready")
    up.add_argument(
        "--federation",
        action="store_true",
        help="with --demo: two platforms on this machine, 常州市 (city) and 钟楼区 (district), peered both ways",
    )
    up.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for every service to answer /readyz (default 60)",
    )
    up.add_argument(
        "--replicas",
        type=int,
        default=1,
        metavar="N",
        help="run N processes of every service behind the front door (default 1)",
    )
    commands.add_parser("status", help="show whether the running stack's services are ready")
    one = commands.add_parser("service", help="run one service in this process (what a container runs)")
    one.add_argument("name", help="gateway, catalog, request, exchange, audit, connector or console")
    one.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    one.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    door = commands.add_parser(
        "door",
        help="run the front door (nginx) in this process, beside a gateway (what the gateway pod's door runs)",
        description="Routes come from GOVSHARE_SERVICE_URLS, the believed proxies from GOVSHARE_TRUSTED_PROXIES; "
        "access lines go to GOVSHARE_ACCESS_JOURNAL_DIR, which the gateway beside it ships.",
    )
    door.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    door.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    door.add_argument("--gateway-url", required=True, help="the gateway (decision processes) beside the door")
    door.add_argument("--run-dir", type=Path, default=Path("/tmp/govshare-door"), help="nginx's own files")
    door.add_argument("--workers", type=int, default=0, help="nginx worker processes (default: one per core)")
    migrate = commands.add_parser("migrate", help="apply every schema migration (before a rollout)")
    migrate.add_argument("names", nargs="*", metavar="NAME", help="only these services (default: all)")
    backup = commands.add_parser(
        "backup",
        help="write an encrypted, consistent backup: every schema, the outboxes' positions, the keys and secrets",
        description=f"The passphrase comes from {PASSPHRASE_ENV} or --passphrase-file; keep it apart from the file.",
    )
    backup.add_argument("--output", "-o", type=Path, required=True, metavar="FILE", help="the backup file to write")
    backup.add_argument("--passphrase-file", type=Path, metavar="FILE", help="read the passphrase from this file")
    restore = commands.add_parser(
        "restore",
        help="restore a backup into an empty data folder (GOVSHARE_HOME); start it with `govshare up`",
        description=f"The passphrase comes from {PASSPHRASE_ENV} or --passphrase-file.",
    )
    restore.add_argument("source", type=Path, metavar="FILE", help="the backup file")
    restore.add_argument("--passphrase-file", type=Path, metavar="FILE", help="read the passphrase from this file")
    commands.add_parser(
        "rotate-record-key",
        help="add a sealing key for personal data at rest and make it current (exchange-svc moves rows onto it)",
        description="The key goes to <keyring>/exchange-records/ (GOVSHARE_KEYRING_DIR, default <home>/keys). "
        "exchange-svc's exchange-reseal job (every minute) reseals every row with it; an older key file may be "
        "deleted once the job logs nothing more to reseal. Back up the keyring after a rotation.",
    )
    return parser


def rotate_record_key() -> int:
    from exchange_svc.sealing import rotate_key

    home = StackHome.from_env()
    keyring = Path(os.environ.get("GOVSHARE_KEYRING_DIR") or home.root / "keys")
    kid = rotate_key(keyring)
    print(f"新密钥 / new sealing key {kid} in {keyring / 'exchange-records'}; exchange-svc reseals onto it")
    return 0


def _passphrase(args: argparse.Namespace) -> str:
    if args.passphrase_file is not None:
        try:
            return str(args.passphrase_file.read_text().strip())
        except OSError as exc:
            raise StackError(f"cannot read the passphrase file {args.passphrase_file}: {exc.strerror}.") from None
    value = os.environ.get(PASSPHRASE_ENV, "")
    if not value:
        raise StackError(f"give the backup passphrase in {PASSPHRASE_ENV} or with --passphrase-file.")
    return value


def _say(message: str) -> None:
    print(message, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "up" and args.federation:
            from govshare_stack.federation_demo import run_federation_demo

            if not args.demo or args.replicas != 1:
                raise StackError("--federation is the two-platform demo: give it with --demo (and no --replicas).")
            return asyncio.run(run_federation_demo(ready_timeout=args.ready_timeout))
        if args.command == "up":
            from govshare_stack.up import UpOptions, run_up

            return asyncio.run(
                run_up(UpOptions(demo=args.demo, ready_timeout=args.ready_timeout, replicas=args.replicas))
            )
        if args.command == "status":
            return status()
        if args.command == "service":
            from govshare_stack.one_service import serve

            serve(args.name, args.host, args.port)
        if args.command == "door":
            from govshare_stack.one_service import serve_door

            serve_door(args.host, args.port, args.gateway_url, args.run_dir, args.workers)
        if args.command == "migrate":
            from govshare_stack.one_service import run_migrate

            for schema in run_migrate(args.names):
                print(f"govshare: 已迁移 / migrated schema {schema}")
            return 0
        if args.command == "rotate-record-key":
            return rotate_record_key()
        if args.command == "backup":
            from govshare_stack.backup import BackupOptions, run_backup

            return run_backup(BackupOptions(args.output.absolute(), _passphrase(args)), dict(os.environ), _say)
        if args.command == "restore":
            from govshare_stack.backup import RestoreOptions, run_restore

            return run_restore(RestoreOptions(args.source.absolute(), _passphrase(args)), dict(os.environ), _say)
    except StackError as exc:
        print(f"govshare: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    parser.print_help(sys.stderr)
    return 2


def status() -> int:
    from govshare_stack.status import check_status

    home = StackHome.from_env()
    report = asyncio.run(check_status(home))
    if report.stack is None:
        print(f"govshare 未运行 / govshare is not running for {home.root} (no {home.stack_file.name}).")
        return 1
    stack = report.stack
    supervisor_pid = stack.get("supervisor_pid")
    if not procs.pid_alive(supervisor_pid):
        print(
            f"govshare 未运行 / the govshare supervisor (pid {supervisor_pid}) is not running; "
            f"{home.stack_file} is left over from a run that was killed."
        )
    elif stack.get("state") != "ready":
        print(f"govshare 启动中 / govshare is still starting (since {stack.get('started_at')}).")
    print(table.render(table.rows_for(stack, report.statuses)))
    print()
    print(table.footer(stack))
    return 0 if report.all_ready else 1


if __name__ == "__main__":
    sys.exit(main())
