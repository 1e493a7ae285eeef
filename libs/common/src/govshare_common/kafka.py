"""Kafka plumbing: the relay's producer and topic set-up.

The broker is a transport, not the record: the embedded one keeps messages in memory only, so everything here
tolerates a broker that disappears and comes back empty — the outbox feed fills whatever it lost.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger("govshare.kafka")


async def ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def broker_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


class EventProducer:
    """acks=all, keyed by aggregate id; rebuilt after a failure so a replaced broker is picked up."""

    def __init__(self, bootstrap: str, *, partitions: int = 3, send_timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.send_timeout = send_timeout
        self._producer: AIOKafkaProducer | None = None
        self._topics_ready: set[str] = set()

    async def _get(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                linger_ms=2,
                max_batch_size=256 * 1024,
                request_timeout_ms=int(self.send_timeout * 1000),
                metadata_max_age_ms=5000,
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def publish(self, topic: str, messages: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
        """Send (key, value, headers) messages and wait until the broker has them all (acks=all)."""
        try:
            if topic not in self._topics_ready:
                await ensure_topics(self.bootstrap, [topic], self.partitions)
                self._topics_ready.add(topic)
            producer = await self._get()
            futures = [await producer.send(topic, value, key=key, headers=headers) for key, value, headers in messages]
            await asyncio.wait_for(asyncio.gather(*futures), self.send_timeout)
        except Exception:
            await self.reset()
            raise

    async def reset(self) -> None:
        producer, self._producer = self._producer, None
        self._topics_ready.clear()
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception as exc:
                log.debug("producer stop failed: %s", exc)

    async def stop(self) -> None:
        await self.reset()
