"""Settings from the environment (pydantic-settings); every field is documented in the README.

Service URLs use the conventional unprefixed names (`DATABASE_URL`, `REDIS_URL`, `S3_*`);
Townsquare's own knobs use the `TOWNSQUARE_` prefix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, f"TOWNSQUARE_{name}")


def secret(default: Any = None, env: str | None = None) -> Any:
    """A secret setting: also read from `<NAME>_FILE`, and masked wherever settings are shown."""
    return Field(default=default, validation_alias=_env(env) if env else None, json_schema_extra={"secret": True})


def is_secret(field: FieldInfo) -> bool:
    return isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret") is True


def _env_names(name: str, field: FieldInfo) -> list[str]:
    if isinstance(field.validation_alias, AliasChoices):
        return [c for c in field.validation_alias.choices if isinstance(c, str)]
    return [f"TOWNSQUARE_{name.upper()}"]


def mask(value: Any) -> Any:
    """A secret as it may be shown: a URL keeps everything but its password, anything else is starred."""
    if not value:
        return value
    text = str(value)
    if "://" in text:
        parts = urlsplit(text)
        if parts.password is None:
            return text
        netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return "***"


class _SecretFiles(PydanticBaseSettingsSource):
    """`<NAME>_FILE=/run/secrets/x` for every secret setting (the Docker / Kubernetes secrets
    convention): the file's content, without its final newline, is the value."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every secret at once

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if not is_secret(field):
                continue
            for env in _env_names(name, field):
                path = os.environ.get(f"{env}_FILE")
                if not path:
                    continue
                try:
                    value = Path(path).read_text().rstrip("\r\n")
                except OSError as exc:
                    raise ValueError(f"{env}_FILE: cannot read {path} ({exc.strerror or exc})") from None
                if os.environ.get(env) not in (None, "", value):
                    # (the same value in both is fine: `up` and `serve` pass the resolved URLs to their children)
                    raise ValueError(f"{env} and {env}_FILE are both set, to different values; set one")
                found[name] = value
                break
        return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOWNSQUARE_", extra="ignore", populate_by_name=True)

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # how clients reach us, e.g. behind a proxy; default http://host:port
    # proxies (IPs / CIDRs, comma-separated) whose X-Forwarded-For/-Proto the server believes; none
    # by default: any local process could otherwise pose as many clients (and escape per-address limits)
    forwarded_allow_ips: str = ""

    database_url: str | None = secret(env="DATABASE_URL")
    database_schema: str | None = None  # run inside this schema (tests use one per session)
    database_pool_size: int = 20
    redis_url: str | None = secret(env="REDIS_URL")
    redis_prefix: str = "ts:"

    s3_endpoint: str | None = Field(default=None, validation_alias=_env("S3_ENDPOINT"))
    s3_access_key: str = secret("", env="S3_ACCESS_KEY")
    s3_secret_key: str = secret("", env="S3_SECRET_KEY")
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
    gateway_presence_sweep_seconds: float = 15.0  # how often each server announces expired presence leases as offline

    admin_username: str = "admin"  # the instance administrator `init` / `up` create
    admin_password: str | None = secret()  # its password (init sets it, also on an existing admin); unset: generated once, kept in <data_dir>/admin-credentials
    secret_key: str | None = secret()  # Fernet key for agent tokens at rest; default: <data_dir>/secret.key, made once
    upload_key: str | None = secret()  # AES-256 key(s) for uploads at rest, base64, comma-separated (first seals); default: <data_dir>/upload.key

    # --- agents (issue: agent runtime) ---
    ollama_host: str | None = Field(default=None, validation_alias=_env("OLLAMA_HOST"))  # unset: `up` serves the bundled model
    model_port: int = 11434  # where `up` / `model serve` serve the bundled model (Ollama's port)
    models_dir: Path | None = None  # extra *.gguf files served by `model serve`, by file stem
    model_threads: int | None = None  # llama.cpp threads of `model serve` (generation and prompts); unset: chosen per generation from the machine's load (worker/modelserver/threads.py)
    model_prefix_cache_mb: float = Field(default=256, ge=0)  # `model serve`: saved prompt states per loaded model (0: off)
    routing_file: Path | None = None  # YAML: backends, per-agent / per-task chains, breakers (default: the bundled model)
    society: str = "village"  # society file `up` seeds on first start: a bundled name or a path
    sim_speed: float = 1.0  # simulated seconds per real second (rhythms follow the simulation clock)
    sim_start_hour: float = 9.0  # simulated hour when the society was founded
    seed: int = Field(default=0, ge=0, le=2**31 - 1)  # the run's seed: every turn-taking roll and draw depends on it (0: unseeded)
    worker_concurrency: int = 16  # events acted on at once per worker (their turns then wait for the model by priority)
    worker_claim_idle_ms: int = 30_000  # a pending event idle this long is claimed from a dead worker
    turn_timeout_seconds: float = 900.0  # a safety net against a hung turn: a slow model is waited for, never timed out
    model_slots: int = Field(default=1, ge=1, le=64)  # turns using the model at once per worker (llama.cpp: one; a real Ollama pool: more)
    pace_max_wait_seconds: float = Field(default=30.0, gt=0)  # a turn nobody asked for gives up after waiting this long for the model
    reply_form: Literal["transcript", "chat"] = "transcript"  # the prompt form a plan is realised in (agents/turn/realise.py)
    reply_candidates: int = Field(default=2, ge=1, le=8)  # lines asked of the model per turn; the most relevant that passes the gate is posted
    gate_relevance_floor: float = Field(default=0.25, ge=0, le=1)  # a line whose embedding cosine to what it answers is below this is off-topic (shuffled pairs' p90: 0.21-0.35)
    known_relevance_floor: float = Field(default=0.5, ge=0, le=1)  # a persona's `knows` statement answers a question from this cosine on
    agent_llm_concurrency: int = 1  # LLM calls in flight per agent
    agent_tokens_per_minute: int = 6000  # prompt + completion tokens per agent per minute
    agent_max_failures: int = 5  # consecutive failed turns before an agent is paused with a reason
    reply_max_tokens: int = 60
    context_messages: int = 6  # recent channel messages in a prompt
    chain_cap: int = 6  # consecutive agent messages in a channel before agents wait for a human or a pause
    channel_budget_per_minute: int = 6  # agent messages per channel per minute
    agent_cooldown_seconds: float = 8.0  # least time between two unprompted messages of one agent
    revive_idle_seconds: float = 120.0  # an idle channel is revived with a new topic after this long
    mind_share: float = Field(default=0.4, ge=0, le=1)  # share of revivals that open with what is on the agent's mind (news travels)
    model_between_agents: bool = False  # the model words agents' lines to each other (agree, disagree, ask, joke): for a larger model
    interview_relevance_floor: float = Field(default=0.35, ge=0, le=1)  # a memory whose cosine similarity to an interview question is below this does not count as knowing about it
    interview_max_tokens: int = Field(default=60, ge=8, le=512)  # length of an interview answer (cut to its first sentences, see agents/interview/answer.py)
    interview_concurrency: int = Field(default=2, ge=1, le=32)  # agents a society-wide interview questions at once (their model calls queue at the model)
    records_retention_days: float = 30.0  # LLM-call and turn records older than this are pruned (an hourly rq job)

    # --- memory, relationships, social graph (issue: memory and the social graph) ---
    chroma_url: str | None = Field(default=None, validation_alias=_env("CHROMA_URL"))  # unset: Chroma on <data_dir>/chroma
    memory_port: int = 8000  # where `up` / `memory serve` serve Chroma on the data folder when CHROMA_URL is unset
    memory_recall: int = 2  # memories about the topic in a turn's prompt (plus one per person present, up to 3); 0: none
    memory_decay_per_hour: float = 0.995  # recency factor per hour since a memory was last recalled
    fact_half_life_days: float = 14.0  # a fact's confidence halves this often unless heard again
    memory_reflect_threshold: float = 300.0  # importance accumulated since the last reflection that triggers one
    memory_max_per_agent: int = 5000  # consolidation condenses, then forgets, beyond this many memories per agent
    memory_rate_idle_seconds: float = 20.0  # the LLM rates new memories' importance after this long without a turn
    graph_snapshot_minutes: float = 15.0  # the social graph is snapshotted this often (an rq job)
    graph_retention_days: float = 90.0  # snapshots older than this are pruned
    social_actions: bool = True  # agents react, DM, open threads, create channels and rate peers
    reaction_rate: float = 0.15  # scales how often an agent who saw a message reacts with an emoji
    thread_after: int = 4  # a back-and-forth of this many replies between two members moves into a thread
    outreach_seconds: float = 600.0  # per society, at most one agent writes privately to a friend this often
    founding_seconds: float = 300.0  # per society, at most one agent opens a channel for a shared interest this often (checked every tick)
    founding_cooldown_seconds: float = 1800.0  # an agent that opened a channel opens no other for this long
    turn_homophily: float = Field(default=3.0, ge=0)  # how strongly who answers a message follows liking, acquaintance and shared interests
    max_society_channels: int = 16  # agents open no channel beyond this many in a society

    # --- analytics, reports and exports (issue 17) ---
    analytics_batch_rows: int = Field(default=2000, ge=100, le=100_000)  # rows per batch read from a server-side cursor (scorecard, exports)
    analytics_topic_sample: int = Field(default=1500, ge=0, le=50_000)  # messages embedded for the topics (a seeded reservoir sample of the window); 0: no topics

    # --- backup and restore (issue: operations) ---
    backup_dir: Path | None = None  # where backups are written and listed (default: <data_dir>/backups)
    backup_every_hours: float = 24.0  # a scheduled backup (an rq job) this often; 0 disables
    backup_keep: int = 7  # scheduled backups kept (older ones are deleted; manual backups are never pruned)
    backup_compress: bool = True  # gzip the archive (.tar.gz) or not (.tar)
    backup_key: str | None = secret()  # AES-256 key(s) encrypting backup archives, base64, comma-separated (first seals); unset: plaintext

    log_level: str = "INFO"
    log_json: bool = True
    log_dir: Path | None = None  # where `up` writes each process's log file (default: <data_dir>/logs)
    log_file_max_mb: float = Field(default=20.0, gt=0)  # a log file of `up` is rotated past this size (3 older ones kept)
    log_store_level: str = "INFO"  # records at this level and up (and at LOG_LEVEL's) go to the dashboard's log store
    log_store_max: int = 20_000  # records kept in the log store (a capped Redis stream); 0 disables it

    # --- observability (issue: operations) ---
    ready_timeout_seconds: float = 2.0  # each /ready check's time budget (a hung service is reported as timeout)
    metrics_token: str | None = secret()  # bearer token for /metrics from other hosts (loopback needs none); unset: loopback only

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _SecretFiles(settings_cls), dotenv_settings, file_secret_settings

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() (and so any log line or traceback that shows the settings) mask secrets
        for name, value in super().__repr_args__():
            field = type(self).model_fields.get(name or "")
            yield name, mask(value) if field is not None and is_secret(field) else value

    def redacted(self) -> dict[str, Any]:
        """The settings as JSON-able values safe to show or save: secrets masked, and the password
        of any URL too (an operator may put one in CHROMA_URL, OLLAMA_HOST, S3_ENDPOINT...)."""
        fields = type(self).model_fields
        return {k: mask(v) if is_secret(fields[k]) or (isinstance(v, str) and "://" in v) else v
                for k, v in self.model_dump(mode="json").items()}

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def resolved_backup_dir(self) -> Path:
        path = (self.backup_dir or self.resolved_data_dir() / "backups").expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolved_log_dir(self) -> Path:
        path = (self.log_dir or self.resolved_data_dir() / "logs").expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path


@lru_cache
def get_settings() -> Settings:
    return Settings()
