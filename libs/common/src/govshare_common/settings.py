"""Platform settings, read from the environment with the GOVSHARE_ prefix."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from govshare_common.purpose_keys import MasterSecretRefused, Purpose, PurposeKeys, check_master_secret

DEFAULT_SERVICE_PORTS = {
    "gateway": 8000,
    "catalog": 8101,
    "request": 8102,
    "exchange": 8103,
    "audit": 8104,
    "connector": 8105,
    "console": 8106,
    # The gateway's internal listener: /internal/... for the platform's services only, never the public door.
    "gateway-internal": 8100,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOVSHARE_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/govshare"
    database_pool_size: int = 10
    # exchange-svc: rows of a batch checked and staged at a time (its memory is about this many rows, whatever
    # the file's size).
    ingest_chunk_rows: int = Field(default=20_000, ge=1, le=1_000_000)
    # On one machine each service migrates its schema at start; on Kubernetes a Job runs `govshare migrate`
    # before the rollout and the replicas start with this false.
    migrate_at_start: bool = True
    # The schema owner's URL, when the service's runtime connections (database_url) run as a narrower role:
    # migrations and the owner's grants to that role run with it at start, then it is closed (audit-svc).
    database_owner_url: str | None = None
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Kafka topic names are prefixed so tests and several platforms can share one broker.
    topic_prefix: str = "govshare"
    topic_partitions: int = 3
    # A production broker: SSL, SASL_PLAINTEXT or SASL_SSL; SASL with SCRAM-SHA-512 (or -256, PLAIN);
    # a CA file for the broker's certificate, a client certificate and key for mutual TLS.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # How long a consumer replica may be silent before the group gives its partitions to the others.
    consumer_session_timeout_ms: int = 10000
    # A periodic job's interval in seconds, by job name, where the service's own is not wanted
    # (JSON, e.g. {"grant-expiry": 30}); every replica must be given the same.
    job_intervals: dict[str, float] = Field(default_factory=dict)
    profile: str = "zhonglou"
    profile_file: str | None = None
    home: str = ".govshare"
    # The gateway's access journal (every request is appended here before it is written to the outbox); one
    # folder per gateway process. Default: <home>/journal/gateway-access.
    access_journal_dir: str | None = None
    service_urls: dict[str, str] = Field(
        default_factory=lambda: {n: f"http://127.0.0.1:{p}" for n, p in DEFAULT_SERVICE_PORTS.items()}
    )
    # The one secret every purpose key is derived from (govshare_common.purpose_keys); no default — a service
    # refuses to start without one. Either the value or a file holding it (a mounted secret).
    master_secret: SecretStr | None = None
    master_secret_file: str | None = None
    # While the master secret is replaced: the old one, accepted for checking and unwrapping only.
    master_secret_previous: SecretStr | None = None
    # Per purpose, the version of its key that makes new values (JSON, e.g. {"internal-calls": 2}).
    key_versions: dict[str, int] = Field(default_factory=dict)
    _keys: PurposeKeys | None = PrivateAttr(default=None)
    jwks_url: str | None = None
    token_issuer: str = "govshare"
    token_audience: str = "govshare"
    token_leeway_seconds: float = 30.0
    admin_password: SecretStr | None = None
    # An administrator (platform_admin, auditor, dept_admin) without a second factor signs in with the password
    # alone only this long after the account was created; after that, only once enrolled (gateway README).
    second_factor_grace_hours: float = 24.0
    # A site may trust an external OIDC issuer (e.g. Keycloak) instead of, or beside, the gateway's own logins.
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_audience: str | None = None
    oidc_roles_claim: str = "roles"  # dotted path, e.g. realm_access.roles for Keycloak
    oidc_department_claim: str = "dept"
    # Client certificates are checked by the TLS terminator in front of the gateway, which reports the
    # certificate's SHA-256 fingerprint in this header; only requests from trusted_proxies may set it.
    client_cert_header: str = "x-client-cert-sha256"
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    outbox_retention_days: int = 30
    relay_batch_size: int = 2000
    catchup_interval_seconds: float = 2.0
    # Where the platform's key files live (one folder per purpose, e.g. audit-checkpoint/); a KMS or secret
    # store mounted as files can take its place. Default: <home>/keys.
    keyring_dir: str | None = None
    # Federation (govshare_common.platform_identity): who this platform is to its peers. Level and name default
    # to the profile's; without a division code the platform federates with no one.
    platform_division_code: str | None = None
    platform_level: str | None = None
    platform_name: str | None = None
    # The address peers reach this platform's door at (what they sign as @target-uri); default: the Host the
    # request came with.
    federation_public_url: str | None = None
    # The CA that peers' TLS certificates are checked against (a private government CA); default: the system's.
    federation_ca_file: str | None = None
    # How often a parent pulls each child's catalog change feed.
    federation_pull_interval_seconds: float = 5.0
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("kafka_security_protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        value = value.upper()
        if value not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ValueError("GOVSHARE_KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
        return value

    @field_validator("service_urls", "key_versions", "job_intervals", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

    @field_validator("job_intervals")
    @classmethod
    def _positive_intervals(cls, value: dict[str, float]) -> dict[str, float]:
        for name, seconds in value.items():
            if not seconds >= 1:
                raise ValueError(f"GOVSHARE_JOB_INTERVALS: the job {name!r} needs an interval of at least 1 second")
        return value

    def purpose_keys(self) -> PurposeKeys:
        """The platform's purpose keys; raises MasterSecretRefused (with how to make a secret) when the master
        secret is missing, the documented default or too short."""
        master = check_master_secret(self._master_secret_value())
        previous = None
        if self.master_secret_previous is not None:
            previous = check_master_secret(
                self.master_secret_previous.get_secret_value(), setting="GOVSHARE_MASTER_SECRET_PREVIOUS"
            )
        self._keys = _purpose_keys(master, previous, tuple(sorted(self.key_versions.items())))
        return self._keys

    def _master_secret_value(self) -> str | None:
        if self.master_secret is not None:
            return self.master_secret.get_secret_value()
        if self.master_secret_file:
            try:
                return Path(self.master_secret_file).read_text().strip()
            except OSError as exc:
                raise MasterSecretRefused(
                    f"无法读取 GOVSHARE_MASTER_SECRET_FILE / cannot read {self.master_secret_file}: {exc.strerror}"
                ) from None
        return None

    def service_url(self, name: str) -> str:
        try:
            return self.service_urls[name].rstrip("/")
        except KeyError:
            raise KeyError(f"no URL configured for service {name!r} (GOVSHARE_SERVICE_URLS)") from None

    def topic(self, source: str) -> str:
        return f"{self.topic_prefix}.{source}"

    @property
    def async_database_url(self) -> str:
        return to_async_url(self.database_url)

    def internal_url(self, name: str) -> str:
        """Where another service reaches `name`'s internal routes: its internal listener when it has one (the
        gateway, whose public port never answers them), else its one port."""
        internal = self.service_urls.get(f"{name}-internal")
        return internal.rstrip("/") if internal else self.service_url(name)

    def keyring(self) -> Path:
        return Path(self.keyring_dir) if self.keyring_dir else Path(self.home) / "keys"

    def hash_key(self) -> bytes:
        """The current key for hashing personal identifiers (logs, access events, audit lookups)."""
        return self.purpose_keys().current(Purpose.IDENTIFIER_HASHING).key


def to_async_url(url: str) -> str:
    """Accept plain postgresql:// URLs (as operators write them) and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"GOVSHARE_DATABASE_URL must be a postgresql:// URL, got scheme {urlsplit(url).scheme!r}")


def describe_database_url(url: str) -> str:
    """Where a database URL points, without its password — safe for logs and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host and "host=" in parts.query:
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.username or ''}@{host}{port}{parts.path}"


@cache
def _purpose_keys(master: bytes, previous: bytes | None, versions: tuple[tuple[str, int], ...]) -> PurposeKeys:
    return PurposeKeys(master, previous_master=previous, versions=dict(versions))


@lru_cache
def get_settings() -> Settings:
    return Settings()
