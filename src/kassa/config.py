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
    key_rotation_overlap_hours: int = 24


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
