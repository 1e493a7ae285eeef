"""Platform settings, read from the environment with the GOVSHARE_ prefix."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SERVICE_PORTS = {
    "gateway": 8000,
    "catalog": 8101,
    "request": 8102,
    "exchange": 8103,
    "audit": 8104,
    "connector": 8105,
    "console": 8106,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOVSHARE_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/govshare"
    database_pool_size: int = 5
    # The schema owner's URL, when the service's runtime connections (database_url) run as a narrower role:
    # migrations and the owner's grants to that role run with it at start, then it is closed (audit-svc).
    database_owner_url: str | None = None
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Kafka topic names are prefixed so tests and several platforms can share one broker.
    topic_prefix: str = "govshare"
    topic_partitions: int = 3
    profile: str = "zhonglou"
    profile_file: str | None = None
    home: str = ".govshare"
    # The gateway's access journal (every request is appended here before it is written to the outbox); one
    # folder per gateway process. Default: <home>/journal/gateway-access.
    access_journal_dir: str | None = None
    service_urls: dict[str, str] = Field(
        default_factory=lambda: {n: f"http://127.0.0.1:{p}" for n, p in DEFAULT_SERVICE_PORTS.items()}
    )
    internal_secret: SecretStr = SecretStr("dev-internal-secret-change-me")
    jwks_url: str | None = None
    token_issuer: str = "govshare"
    token_audience: str = "govshare"
    token_leeway_seconds: float = 30.0
    admin_password: SecretStr | None = None
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
    log_level: str = "INFO"
    log_json: bool = True
    # Key for hashing personal identifiers in logs (HMAC); defaults to the internal secret.
    identifier_hash_key: SecretStr | None = None

    @field_validator("service_urls", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

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

    def keyring(self) -> Path:
        return Path(self.keyring_dir) if self.keyring_dir else Path(self.home) / "keys"

    def hash_key(self) -> bytes:
        secret = self.identifier_hash_key or self.internal_secret
        return secret.get_secret_value().encode()


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


@lru_cache
def get_settings() -> Settings:
    return Settings()
