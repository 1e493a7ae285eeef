"""The Python API the test fixtures use: one embedded PostgreSQL and one Tansu broker, stopped for sure."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from govshare_stack import start_broker, start_postgres


async def test_postgres_starts_creates_databases_and_keeps_data_across_restarts(outside_tmp):
    pg = start_postgres(outside_tmp / "pgdata")
    try:
        url = pg.create_database("probe")
        assert pg.create_database("probe") == url  # idempotent
        assert url == pg.url("probe")
        assert pg.admin_url == pg.url("postgres")
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
        await conn.close()
    finally:
        pg.stop()
    assert not pg.is_running()

    with start_postgres(outside_tmp / "pgdata") as again:
        assert again.pid != pg.pid
        conn = await asyncpg.connect(again.url("probe"))
        assert await conn.fetchval("SELECT x FROM t") == 42
        await conn.close()
        again.drop_database("probe")
        assert again.psql("SELECT count(*) FROM pg_database WHERE datname = 'probe'").strip() == "0"
    assert not again.is_running()


async def test_broker_restart_fresh_keeps_the_port_and_forgets_everything():
    broker = start_broker()
    try:
        port, pid = broker.port, broker.pid
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        await producer.send_and_wait("probe", b"before")
        await producer.stop()

        broker.restart_fresh()
        assert broker.port == port and broker.pid != pid and broker.is_running()

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        await producer.send_and_wait("probe", b"after")
        await producer.stop()
        consumer = AIOKafkaConsumer(
            "probe", bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=5000)
        finally:
            await consumer.stop()
        values = [m.value for records in batch.values() for m in records]
        assert values == [b"after"]
    finally:
        broker.stop()
    assert not broker.is_running()


def test_a_broker_started_from_a_worker_thread_outlives_that_thread():
    import threading
    import time

    started = {}
    worker = threading.Thread(target=lambda: started.setdefault("broker", start_broker()))
    worker.start()
    worker.join()
    time.sleep(0.3)
    broker = started["broker"]
    try:
        assert broker.is_running()
    finally:
        broker.stop()
