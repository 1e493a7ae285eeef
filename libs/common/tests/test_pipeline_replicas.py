"""Three replicas of a consumer, each its own process, against the real PostgreSQL and Tansu: they split the
topic's partitions, and every event is handled exactly once and in per-aggregate order, also after one of them
is killed outright in the middle of the flow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from govshare_common.service import create_service_app
from govshare_common.testing import eventually, free_port, serve

HERE = Path(__file__).parent


def _alphas(body: str, metric: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith(metric + "{") and 'source="alpha"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def _handled_by(body: str) -> float:
    return _alphas(body, "govshare_events_handled_total")


@contextmanager
def replicas(settings: Any, ports: list[int], log_dir: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = dict(os.environ)
    env.update(
        GOVSHARE_DATABASE_URL=settings.database_url,
        GOVSHARE_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        GOVSHARE_TOPIC_PREFIX=settings.topic_prefix,
        GOVSHARE_MASTER_SECRET=settings.master_secret.get_secret_value(),
        GOVSHARE_SERVICE_URLS=json.dumps(settings.service_urls),
        GOVSHARE_CATCHUP_INTERVAL_SECONDS="0.5",
        GOVSHARE_CONSUMER_SESSION_TIMEOUT_MS="6000",
        GOVSHARE_HOME=str(log_dir / "home"),
        GOVSHARE_LOG_JSON="false",
        GOVSHARE_LOG_LEVEL="WARNING",
    )
    procs = []
    for port in ports:
        with open(log_dir / f"beta-{port}.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(HERE / "pipeline_replica.py"), str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_three_replicas_handle_20000_events_exactly_once_in_order_even_when_one_is_killed(
    make_settings, tmp_path, alpha, items
) -> None:
    ports = {"alpha": free_port(), "gateway": free_port()}
    beta_ports = [free_port() for _ in range(3)]
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()} | {"beta": f"http://127.0.0.1:{beta_ports[0]}"}
    settings = make_settings(service_urls=urls)
    async with AsyncExitStack() as stack:
        alpha_app = create_service_app(alpha(), settings)
        await stack.enter_async_context(serve(alpha_app, ports["alpha"]))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=5.0))
        with replicas(settings, beta_ports, tmp_path) as procs:

            async def all_ready() -> bool:
                for port, proc in zip(beta_ports, procs, strict=True):
                    assert proc.poll() is None, (tmp_path / f"beta-{port}.log").read_text()[-3000:]
                    try:
                        if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code != 200:
                            return False
                    except httpx.HTTPError:
                        return False
                return True

            await eventually(all_ready, timeout=90)
            db = alpha_app.state.db

            async def write(first_version: int, rounds: int) -> None:
                for version in range(first_version, first_version + rounds):
                    async with db.unit_of_work() as uow:
                        await items(uow, {f"item-{i}": version for i in range(1000)})

            async def handled(n: int) -> bool:
                async with db.engine.connect() as conn:
                    got = (await conn.execute(text("SELECT count(*) FROM beta.received"))).scalar_one()
                return bool(got >= n)

            await write(1, 10)
            await eventually(lambda: handled(10_000), timeout=120)
            shares = [_handled_by((await http.get(f"http://127.0.0.1:{p}/metrics")).text) for p in beta_ports]
            assert sum(shares) == 10_000
            assert sum(1 for s in shares if s > 0) >= 2, f"the replicas did not split the work: {shares}"

            # One replica dies outright (no goodbye to the group) while the next 10,000 are written.
            writing = write(11, 10)
            procs[2].send_signal(signal.SIGKILL)
            await writing
            await eventually(lambda: handled(20_000), timeout=120)

            # The operators' view of the group: the two survivors hold all of alpha's partitions between them.
            async def survivors_hold_every_partition() -> bool:
                held = [
                    _alphas(
                        (await http.get(f"http://127.0.0.1:{p}/metrics")).text, "govshare_consumer_assigned_partitions"
                    )
                    for p in beta_ports[:2]
                ]
                return sum(held) == settings.topic_partitions and min(held) >= 1

            await eventually(survivors_hold_every_partition, timeout=60)

            async with db.engine.connect() as conn:
                rows = (
                    await conn.execute(text("SELECT event_id::text, subject, version FROM beta.received ORDER BY n"))
                ).all()
    assert len(rows) == 20_000
    assert len({r[0] for r in rows}) == 20_000, "an event was handled twice"
    per_item: dict[str, list[int]] = {}
    for _id, subject, version in rows:
        per_item.setdefault(subject, []).append(version)
    assert all(versions == list(range(1, 21)) for versions in per_item.values()), "an aggregate out of order"
