"""Settings, read from the environment (``KASSA_*``) and, for local runs, from ``.kassa/``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator can configure. Secrets have no defaults in live deployments:
    ``kassa up`` generates them once into ``.kassa/secrets.env`` for local runs."""

    model_config = SettingsConfigDict(env_prefix="KASSA_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="PostgreSQL DSN; unset means the embedded cluster"
    )
    data_dir: Path = Field(default=Path(".kassa"), description="local state for `kassa up`")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    # The API's address as shoppers' browsers see it (3-D Secure returns); default host:port.
    public_url: str | None = None
    db_pool_min: int = 2
    db_pool_max: int = 20
    # Key-encryption key (base64 of 32 bytes) wrapping every per-record data key; the key id
    # lets a rotation tell old wrappings from new ones.
    kek: str = ""
    kek_id: str = "k1"
    # "id:base64,…": KEKs a rotation is moving away from, still needed to unwrap old data keys.
    previous_keks: str = ""
    # Keyed-hash secret for blind indexes (e.g. customer email lookups) — not an encryption key.
    index_key: str = ""
    log_level: str = "info"
    log_json: bool = True
    # Per API key, per API process: Stripe's own default is 100 operations/s in live mode.
    rate_limit_per_second: float = 100.0
    rate_limit_burst: int = 200
    idempotency_ttl_hours: int = 24
    # PSPs (docs/connectors.md): a connectors JSON file, else the running sandbox's manifest
    # (`kassa up` points this at .kassa/sandbox.json), else none (payments are refused).
    connectors_file: Path | None = None
    sandbox_manifest: Path | None = None
    key_rotation_overlap_hours: int = 24
    # Webhooks (docs/webhooks.md). Live mode never delivers to loopback, private or otherwise
    # non-public addresses unless this is set (an operator's internal receivers).
    webhooks_allow_private: bool = False
    webhook_timeout_seconds: float = 10.0
    # A claimed delivery not recorded within the lease (its worker died) is tried again.
    webhook_lease_seconds: float = 60.0
    webhook_retry_hours: float = 72.0
    webhook_backoff_base_seconds: float = 60.0
    webhook_backoff_cap_seconds: float = 6 * 3600.0
    webhook_disable_after_days: float = 3.0
    webhook_endpoint_concurrency: int = 8
    webhook_worker_concurrency: int = 64
    webhook_max_crashes: int = 3
    # The NATS JetStream relay (`kassa relay`).
    nats_url: str = "nats://127.0.0.1:4222"
    relay_stream: str = "KASSA_EVENTS"
    relay_subject_prefix: str = "kassa.events"
    relay_duplicate_window_seconds: float = 7200.0
    # A batch a relay leased but did not mark published within this is published again.
    relay_lease_seconds: float = 30.0


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
