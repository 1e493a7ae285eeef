"""`govshare-connector`: run a department's connector, read its status, handle its dead letters.

govshare-connector run --config connector.toml
govshare-connector check --config connector.toml       validate the file (and the mapping, with --online)
govshare-connector status --config connector.toml [--json]
govshare-connector dead-letters list|resend|drop --config connector.toml [ids] [--set ITEM=VALUE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any

from govshare_common.keep_alive import SERVER_GRACEFUL_SHUTDOWN_SECONDS, SERVER_KEEP_ALIVE_SECONDS

from connector.config import ConfigError, ConnectorConfig, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="govshare-connector", description="govshare 前置机 (front-end connector)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "check", "status"):
        p = sub.add_parser(name)
        p.add_argument("--config", required=True)
        if name == "status":
            p.add_argument("--json", action="store_true")
    dl = sub.add_parser("dead-letters")
    dl.add_argument("action", choices=["list", "resend"])
    dl.add_argument("ids", nargs="*", type=int)
    dl.add_argument("--config", required=True)
    dl.add_argument("--set", action="append", default=[], metavar="ITEM=VALUE", help="correct an item before resending")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.command == "check":
        print(f"{args.config}: OK ({len(config.sources)} sources, {len(config.subscriptions)} subscriptions)")
        return 0
    if args.command == "run":
        return asyncio.run(_run(config))
    if args.command == "status":
        return asyncio.run(_status(config, as_json=args.json))
    return asyncio.run(_dead_letters(config, args.action, args.ids, args.set))


async def _run(config: ConnectorConfig) -> int:
    import uvicorn

    from govshare_common.tracing import setup_logging

    from connector.runtime import Connector
    from connector.web import create_connector_app

    setup_logging("connector")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call to the platform is noise
    connector = Connector(config)
    try:
        await connector.start()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        await connector.stop()
        return 2
    host, port = config.listen_host_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_connector_app(connector, manage=False),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=SERVER_GRACEFUL_SHUTDOWN_SECONDS,
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    try:
        await server.serve()
    finally:
        await connector.stop()
    return 0


async def _open(config: ConnectorConfig) -> Any:
    from connector.runtime import open_state

    state, _embedded = await open_state(config)  # attaches to the running embedded server; leaves it running
    return state


async def _status(config: ConnectorConfig, *, as_json: bool) -> int:
    from connector import status

    state = await _open(config)
    try:
        report = await status.build(state, config)
    finally:
        await state.close()
    print(json.dumps(report, ensure_ascii=False, indent=2) if as_json else status.render(report))
    errors = [s for s in report["sources"] if s["last_error"]] + [s for s in report["subscriptions"] if s["last_error"]]
    return 1 if errors else 0


async def _dead_letters(config: ConnectorConfig, action: str, ids: list[int], sets: list[str]) -> int:
    state = await _open(config)
    try:
        if action == "list":
            for d in await state.dead_letters():
                reasons = "; ".join(f"{p.get('item')}: {p.get('reason')}" for p in d["problems"])
                print(f"{d['id']:>6}  {d['source']:<16} {d['op']:<7} {d['record_key']:<24} {reasons}")
                print(f"        {json.dumps(d['data'], ensure_ascii=False)}")
            return 0
        corrections = dict(s.split("=", 1) for s in sets)
        if not ids:
            print("name the dead letters to resend (their ids from `dead-letters list`)", file=sys.stderr)
            return 2
        n = await state.resend(ids, corrections)
        print(f"{n} dead letters back in the spool")
        return 0
    finally:
        await state.close()


if __name__ == "__main__":
    sys.exit(main())
