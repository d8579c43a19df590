"""Settings from the environment (pydantic-settings); every field is documented in the README.

Service URLs use the conventional unprefixed names (`DATABASE_URL`, `REDIS_URL`, `S3_*`);
Townsquare's own knobs use the `TOWNSQUARE_` prefix.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, f"TOWNSQUARE_{name}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOWNSQUARE_", extra="ignore", populate_by_name=True)

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # how clients reach us, e.g. behind a proxy; default http://host:port

    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL"))
    database_schema: str | None = None  # run inside this schema (tests use one per session)
    database_pool_size: int = 20
    redis_url: str | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    redis_prefix: str = "ts:"

    s3_endpoint: str | None = Field(default=None, validation_alias=_env("S3_ENDPOINT"))
    s3_access_key: str = Field(default="", validation_alias=_env("S3_ACCESS_KEY"))
    s3_secret_key: str = Field(default="", validation_alias=_env("S3_SECRET_KEY"))
    s3_bucket: str = Field(default="townsquare", validation_alias=_env("S3_BUCKET"))
    s3_secure: bool = Field(default=False, validation_alias=_env("S3_SECURE"))
    s3_region: str | None = Field(default=None, validation_alias=_env("S3_REGION"))

    max_body_bytes: int = 1_048_576  # JSON request bodies
    max_upload_bytes: int = 10_485_760  # one attachment
    max_attachments_per_message: int = 10
    max_message_length: int = 4000
    max_search_results: int = 25

    rate_limits_enabled: bool = True
    rate_limit_global_per_second: int = 50
    rate_limit_scale: float = 1.0  # multiplies every per-route limit (load tests raise it)

    event_stream_maxlen: int = 100_000
    event_publish_poll_seconds: float = 0.25

    gateway_heartbeat_ms: int = 41_250  # HELLO's interval; no frame for 1.5x closes the session (4009)
    gateway_queue_high_water: int = 256  # queued frames past which typing/presence are dropped
    gateway_queue_limit: int = 2048  # queued frames at which a too-slow session is closed (4000, resumable)

    log_level: str = "INFO"
    log_json: bool = True

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path


@lru_cache
def get_settings() -> Settings:
    return Settings()
