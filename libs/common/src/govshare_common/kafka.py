"""Kafka plumbing: the relay's producer, topic set-up, and how clients reach a production broker (TLS, SASL).

The broker is a transport, not the record: the embedded one keeps messages in memory only, so everything here
tolerates a broker that disappears and comes back empty — the outbox feed fills whatever it lost.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from govshare_common.settings import Settings

log = logging.getLogger("govshare.kafka")


@dataclass(frozen=True)
class KafkaSecurity:
    """How to reach the broker: PLAINTEXT (the embedded one), SSL, SASL_PLAINTEXT or SASL_SSL, with
    SCRAM-SHA-256/512 or PLAIN credentials and optional client certificates (mutual TLS)."""

    protocol: str = "PLAINTEXT"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        if self.protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file)
            options["ssl_context"] = context
        if self.protocol.startswith("SASL_"):
            options["sasl_mechanism"] = self.sasl_mechanism or "SCRAM-SHA-512"
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options


PLAINTEXT = KafkaSecurity()


def security_from_settings(settings: Settings) -> KafkaSecurity:
    password = settings.kafka_sasl_password
    return KafkaSecurity(
        protocol=settings.kafka_security_protocol,
        ca_file=settings.kafka_ssl_cafile,
        cert_file=settings.kafka_ssl_certfile,
        key_file=settings.kafka_ssl_keyfile,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=password.get_secret_value() if password is not None else None,
    )


async def ensure_topics(
    bootstrap: str, topics: list[str], partitions: int, security: KafkaSecurity = PLAINTEXT
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security.client_options())
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
    """acks=all, each message to the partition of its aggregate; rebuilt after a failure so a replaced
    broker is picked up."""

    def __init__(
        self,
        bootstrap: str,
        *,
        partitions: int = 3,
        send_timeout: float = 10.0,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.send_timeout = send_timeout
        self.security = security
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
                **self.security.client_options(),
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def publish(self, topic: str, messages: list[tuple[bytes, bytes, int, list[tuple[str, bytes]]]]) -> None:
        """Send (key, value, partition, headers) messages and wait until the broker has them all (acks=all)."""
        try:
            if topic not in self._topics_ready:
                await ensure_topics(self.bootstrap, [topic], self.partitions, self.security)
                self._topics_ready.add(topic)
            producer = await self._get()
            # Record batches built here, one partition at a time, instead of a send (and a future) per
            # message: the partition is already known, and per-message sends were most of the relay's CPU.
            by_partition: dict[int, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = {}
            for key, value, partition, headers in messages:
                by_partition.setdefault(partition, []).append((key, value, headers))
            futures = []
            for partition, items in by_partition.items():
                batch = producer.create_batch()
                for key, value, headers in items:
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        futures.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None, headers=headers)
                futures.append(await producer.send_batch(batch, topic, partition=partition))
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
