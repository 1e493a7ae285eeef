"""The event envelope (CloudEvents 1.0 + a gap-free per-source `seq` + `traceparent`) and the type registry.

Every event type is registered with the pydantic model of its payload, so an emitter cannot publish a
malformed event and a consumer can read the schema of anything it receives.
"""

from __future__ import annotations

import os
import zlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str = Field(description="the emitting service, e.g. govshare/catalog")
    type: str = Field(description="a past-tense fact, e.g. catalog.resource.published")
    time: datetime
    subject: str = Field(description="the aggregate id; also the Kafka key")
    seq: int = Field(description="gap-free sequence per source service, assigned by the relay")
    partition: int | None = Field(default=None, description="the Kafka partition of the aggregate")
    prev: int | None = Field(
        default=None, description="seq of the source's previous event in the same partition (0 for its first)"
    )
    traceparent: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]

    @property
    def source_service(self) -> str:
        return self.source.rsplit("/", 1)[-1]


def source_uri(service: str) -> str:
    return f"govshare/{service}"


def partition_for(subject: str, partitions: int) -> int:
    """The partition of an aggregate: stable across processes and versions, so its events stay in order."""
    return zlib.crc32(subject.encode()) % partitions


_random_pool = bytearray()


def new_event_id() -> str:
    """A random (version 4) UUID as text, made without building a UUID object or a system call per event."""
    global _random_pool
    if len(_random_pool) < 16:
        _random_pool = bytearray(os.urandom(4096))
    raw = _random_pool[-16:]
    del _random_pool[-16:]
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_event(
    *,
    event_id: str,
    source: str,
    type_: str,
    subject: str,
    time: datetime,
    traceparent: str | None,
    data: str,
) -> dict[str, Any]:
    """An event waiting to be written to the outbox; `data` is its payload's JSON text."""
    return {
        "event_id": event_id,
        "source": source,
        "type": type_,
        "subject": subject,
        "time": time,
        "traceparent": traceparent,
        "data": data,
    }


class UnknownEventType(KeyError):
    pass


class EventRegistry:
    """Event types a service may emit, each with its payload schema."""

    def __init__(self) -> None:
        self._types: dict[str, type[BaseModel]] = {}
        self._descriptions: dict[str, str] = {}

    def register(self, type_: str, payload: type[BaseModel], description: str = "") -> None:
        existing = self._types.get(type_)
        if existing is not None and existing is not payload:
            raise ValueError(f"event type {type_!r} is already registered with another payload")
        self._types[type_] = payload
        self._descriptions[type_] = description

    def event(self, type_: str, description: str = ""):  # type: ignore[no-untyped-def]
        """Class decorator: `@registry.event("catalog.resource.published")`."""

        def wrap(model: type[BaseModel]) -> type[BaseModel]:
            self.register(type_, model, description)
            return model

        return wrap

    def merge(self, other: EventRegistry) -> None:
        for type_, model in other._types.items():
            self.register(type_, model, other._descriptions.get(type_, ""))

    def validate(self, type_: str, data: BaseModel | dict[str, Any]) -> dict[str, Any]:
        return self._model_of(type_, data).model_dump(mode="json")

    def validate_json(self, type_: str, data: BaseModel | dict[str, Any]) -> str:
        """The payload checked against its type's schema, as the JSON text that is stored and sent."""
        return self._model_of(type_, data).model_dump_json()

    def _model_of(self, type_: str, data: BaseModel | dict[str, Any]) -> BaseModel:
        model = self._types.get(type_)
        if model is None:
            raise UnknownEventType(f"event type {type_!r} is not registered")
        if type(data) is model:  # the usual case, without two isinstance checks through ABCMeta per event
            return data
        if isinstance(data, BaseModel):
            return data if isinstance(data, model) else model.model_validate(data.model_dump())
        return model.model_validate(data)

    def parse(self, envelope: Envelope) -> BaseModel:
        model = self._types.get(envelope.type)
        if model is None:
            raise UnknownEventType(f"event type {envelope.type!r} is not registered")
        return model.model_validate(envelope.data)

    def schemas(self) -> dict[str, Any]:
        return {
            t: {"description": self._descriptions.get(t, ""), "schema": m.model_json_schema()}
            for t, m in sorted(self._types.items())
        }

    def __contains__(self, type_: str) -> bool:
        return type_ in self._types
