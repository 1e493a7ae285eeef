"""connector.toml: what a department's connector reads, pushes, subscribes to and serves.

Validated once at start; every problem names its key and says what to write there (ConfigError). See
services/connector/README.md for a complete example.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

HINTS = {
    "platform.gateway_url": 'gateway_url = "https://platform.example.gov.cn"',
    "platform.client_id": 'client_id = "<the machine client id the platform office issued>"',
    "platform.client_secret": 'client_secret = "<its secret>" (or client_secret_file = "/etc/govshare/secret")',
    "connector.name": 'name = "gaj-connector-1" (letters, digits, - and _)',
    "resource": 'resource = "101001/000001" (the catalog code of the resource)',
    "database_url": 'database_url = "postgresql://user:pass@host/db" (any SQLAlchemy URL for watermark sources)',
    "table": 'table = "public.person"',
    "key": 'key = ["sfzh"] (the columns that identify a row)',
    "mapping": 'a [..mapping] table: column = "DATA_ITEM", e.g. sfzh = "GMSFHM"',
    "watermark_column": 'watermark_column = "updated_at" (a column that grows on every insert and update)',
    "purpose": 'purpose = "data_verification" (a purpose the grant allows)',
}


class ConfigError(ValueError):
    """connector.toml cannot be used; `problems` lists each key with what to write."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("connector.toml:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,40}$")]


class ConnectorSection(Strict):
    name: Name
    home: str = "."  # where the embedded state database lives (home/pgdata)
    state_url: str | None = None  # the connector's own PostgreSQL; default: an embedded one under home
    listen: str = "127.0.0.1:8300"  # health, metrics and the online-query endpoint
    public_url: str | None = None  # how the platform reaches this connector's online-query endpoint
    # Calls to the online-query endpoint are accepted only from these addresses (the platform's), besides
    # carrying the token this connector registered with the platform.
    platform_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])


class PlatformSection(Strict):
    gateway_url: str
    client_id: str
    client_secret: str | None = None
    client_secret_file: str | None = None
    client_cert: str | None = None  # PEM of the certificate the client is bound to
    client_key: str | None = None
    ca_file: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _secret(self) -> PlatformSection:
        if not self.client_secret and not self.client_secret_file:
            raise ValueError("set client_secret or client_secret_file")
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("client_cert and client_key go together")
        return self

    def secret(self) -> str:
        if self.client_secret:
            return self.client_secret
        assert self.client_secret_file
        return Path(self.client_secret_file).read_text().strip()


class PushSection(Strict):
    batch_max_rows: int = Field(default=5000, ge=1, le=100_000)
    batch_max_wait_seconds: float = Field(default=0.5, ge=0)
    retry_max_seconds: float = Field(default=30.0, gt=0)


class SourceSection(Strict):
    name: Name
    resource: str
    kind: Literal["postgres_wal", "watermark", "staging"]
    database_url: str
    table: str
    key: list[str] = Field(min_length=1)
    mapping: dict[str, str] = Field(min_length=1)
    poll_seconds: float = Field(default=0.2, gt=0)
    # postgres_wal
    slot: str | None = None
    publication: str | None = None
    snapshot: bool = True  # send the rows already in the table when the slot is first made
    wal_warn_mb: float = Field(default=1024.0, gt=0)
    # watermark
    watermark_column: str | None = None
    reconcile_seconds: float = Field(default=3600.0, gt=0)
    # staging (前置库): rows the department writes, taken once
    id_column: str = "id"
    taken_column: str = "taken_at"
    op_column: str | None = None

    @model_validator(mode="after")
    def _kind(self) -> SourceSection:
        if self.kind == "watermark" and not self.watermark_column:
            raise ValueError("a watermark source needs watermark_column")
        for k in self.key:
            if k not in self.mapping:
                raise ValueError(f"key column {k!r} must be in mapping")
        return self

    @property
    def slot_name(self) -> str:
        return self.slot or f"govshare_{self.name.lower().replace('-', '_')}"

    @property
    def publication_name(self) -> str:
        return self.publication or self.slot_name


class SubscriptionSection(Strict):
    name: Name
    resource: str
    purpose: str
    database_url: str
    table: str
    key: list[str] = Field(min_length=1)
    mapping: dict[str, str] = Field(min_length=1)  # local column = "DATA_ITEM"
    cursor_table: str = "govshare_feed_cursor"
    from_start: bool = True
    poll_seconds: float = Field(default=0.5, gt=0)
    page_size: int = Field(default=1000, ge=1, le=5000)

    @model_validator(mode="after")
    def _key(self) -> SubscriptionSection:
        for k in self.key:
            if k not in self.mapping:
                raise ValueError(f"key column {k!r} must be in mapping")
        return self


class ServeSection(Strict):
    resource: str
    database_url: str
    table: str
    subject_column: str  # the column holding the identifier a consumer asks by
    key_column: str | None = None
    mapping: dict[str, str] = Field(min_length=1)


class ConnectorConfig(Strict):
    connector: ConnectorSection
    platform: PlatformSection
    push: PushSection = Field(default_factory=PushSection)
    sources: list[SourceSection] = Field(default_factory=list)
    subscriptions: list[SubscriptionSection] = Field(default_factory=list)
    serve: list[ServeSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ConnectorConfig:
        names = [s.name for s in self.sources] + [s.name for s in self.subscriptions]
        if len(names) != len(set(names)):
            raise ValueError("every source and subscription needs its own name")
        return self

    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.connector.listen.rpartition(":")
        return host or "127.0.0.1", int(port)

    def serve_url(self) -> str:
        if self.connector.public_url:
            return self.connector.public_url.rstrip("/")
        host, port = self.listen_host_port()
        return f"http://{host}:{port}"


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("function-"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _hint(key: str) -> str:
    if key in HINTS:
        return HINTS[key]
    last = key.rsplit(".", 1)[-1].split("[")[0]
    return HINTS.get(last, "")


def parse(data: dict[str, Any]) -> ConnectorConfig:
    try:
        return ConnectorConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = _location(tuple(err["loc"])) or "(top level)"
            if err["type"] == "missing":
                what = "is missing"
            elif err["type"] == "extra_forbidden":
                what = "is not a setting the connector knows (check its spelling)"
            else:
                what = str(err["msg"]).removeprefix("Value error, ")
            hint = _hint(key)
            problems.append(f"{key} {what}" + (f"; write: {hint}" if hint and err["type"] != "extra_forbidden" else ""))
        raise ConfigError(problems) from None


def load(path: str | os.PathLike[str]) -> ConnectorConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {p}: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p} is not valid TOML: {exc}"]) from None
    config = parse(data)
    if not Path(config.connector.home).is_absolute():
        config.connector.home = str((p.parent / config.connector.home).resolve())
    return config
