"""All settings in one place. Every address and knob is an environment variable (prefix CC_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CC_", extra="ignore")

    # --- dependencies ---
    pg_url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432",
        description="PostgreSQL server URL without database name (SQLAlchemy asyncpg form)",
    )
    db_prefix: str = Field("", description="prepended to every database name (test isolation)")
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_prefix: str = Field("", description="prepended to every exchange and queue name")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_queue_prefix: str = Field("", description="prepended to every task queue name")
    temporal_db_file: Path = Field(
        Path(".run/temporal.sqlite"), description="dev server persistence when we start it"
    )

    # --- processes ---
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_processes: int = Field(
        2, ge=1, le=16, description="`up` runs this many API processes on one port (SO_REUSEPORT): "
        "api, api-2, ..., so that the API can use more than one core"
    )
    run_dir: Path = Path(".run")

    # --- how fast a cut-off peer is noticed (see README "Timeouts") ---
    pg_keepalive_idle_s: int = Field(5, ge=1, description="server-side TCP keepalive: idle before probes")
    pg_keepalive_interval_s: int = Field(2, ge=1, description="between probes")
    pg_keepalive_count: int = Field(3, ge=1, description="unanswered probes before the server drops it")
    pg_idle_in_transaction_s: float = Field(
        10.0, gt=0, description="a session idle inside a transaction this long is ended (its locks freed)"
    )
    pg_statement_timeout_s: float = Field(30.0, gt=0, description="server-side bound on one statement")
    pg_command_timeout_s: float = Field(15.0, gt=0, description="client-side bound on one query")
    relay_standby: bool = Field(
        True, description="`up` runs a hot-standby relay per database (compose: the scale overlay's replicas)"
    )
    relay_idle_session_s: float = Field(
        10.0, gt=0, description="the relay's lock-holding session, silent this long, is ended by the "
        "server: a relay cut off without a reset loses its lock and a standby takes over",
    )
    amqp_heartbeat_s: int = Field(10, ge=1, description="AMQP heartbeat: a silent broker link is dropped")

    # --- API limits ---
    max_order_lines: int = 50
    max_body_bytes: int = 64 * 1024

    # --- MQ variant ---
    relay_batch_size: int = 256
    relay_poll_interval_s: float = 1.0
    consumer_prefetch: int = Field(
        64, ge=1, description="deliveries held by a consumer at once: also the most one batch applies"
    )
    max_deliveries: int = Field(
        5, ge=1, description="processing failures of one message (counted by the consumer) before the DLQ"
    )
    broker_delivery_limit: int = Field(
        20, ge=1, description="the quorum queues' x-delivery-limit: a backstop for a message that "
        "kills its consumer, far above what crashes of healthy consumers add up to",
    )
    reconcile_after_s: float = Field(
        30.0, gt=0, description="an order PENDING this long with no message in flight is re-driven"
    )
    dedup_retention_s: float = Field(
        7 * 86400.0, gt=0, description="the duplicate-detection window: dedup rows older are pruned"
    )
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0

    # --- fault injection and controls (never armed by default) ---
    faults: str = Field("", description="fault points to arm, see common.faults")
    control: str = Field("", description="a deliberately broken configuration, see controls")

    def database(self, variant: str, side: str) -> str:
        """Fixed database names: <variant>_orders and <variant>_inventory."""
        return f"{self.db_prefix}{variant}_{side}"

    def database_url(self, name: str) -> str:
        return f"{self.pg_url.rstrip('/')}/{name}"

    def amqp_name(self, name: str) -> str:
        return f"{self.amqp_prefix}{name}"

    def task_queue(self, name: str) -> str:
        return f"{self.temporal_queue_prefix}{name}"
