"""One frozen settings object for every process, read from `ESCALATION_*` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.core.eventtime import TimeBounds
from stream.logs import librdkafka_log
from stream.security import SaslMechanism, SecurityProtocol, client_security

if TYPE_CHECKING:
    from stream.serde import RegistryConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
_BOOTSTRAP_VARIABLES = ("ESCALATION_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS")


class Settings(BaseSettings):
    """Built once at start and passed down; nothing deeper reads the environment."""

    model_config = SettingsConfigDict(env_prefix="ESCALATION_", frozen=True, extra="ignore")

    # The de-facto standard variable wins too, so the broker script, tests and tools agree.
    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        min_length=1,
        validation_alias=AliasChoices(*_BOOTSTRAP_VARIABLES),
    )
    # How long a command waits for the first broker to answer before it says none did.
    broker_wait_seconds: float = Field(default=10.0, gt=0)
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    schema_registry_url: str | None = None
    # TLS to an https schema registry, whatever the Kafka security protocol (a registry behind a
    # private CA in front of a PLAINTEXT cluster). Unset: the Kafka TLS files when Kafka uses TLS.
    schema_registry_ssl_cafile: Path | None = None
    schema_registry_ssl_certfile: Path | None = None
    schema_registry_ssl_keyfile: Path | None = None
    schema_registry_ssl_key_password: SecretStr | None = None

    app_id: str = "escalation-stream"
    # Prefix for every topic name: isolates test runs and lets several deployments share a cluster.
    topic_prefix: str = ""
    partitions: int = Field(default=4, ge=1)
    data_dir: Path = REPO_ROOT / "data"
    # The shared, read-only data sets (the airline corpus, labelled tweets), kept beside the repo.
    datasets_dir: Path = REPO_ROOT.parent / "shared" / "data"
    policy_path: Path = REPO_ROOT / "policy" / "default.yaml"
    # The policy test suite (a case file or folder) `policy publish` runs before it writes.
    policy_tests_path: Path = REPO_ROOT / "policy" / "tests"
    # The worker's web server: /metrics, /health/live, /health/ready, /stats/, /policy/. Loopback
    # by default; a container sets 0.0.0.0 so probes and Prometheus reach it.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # When set, the worker appends `topic<TAB>partition<TAB>offset` of every record it folds, in
    # the order it folds them: the exact input of a parity replay through the backtest.
    journal_path: Path | None = None
    # How long the group waits for a silent worker before its partitions move to another: the
    # recovery time after a crash. Kafka's default is 45 s.
    session_timeout_seconds: float = Field(default=45.0, ge=6.0)
    # The largest dead letter the worker writes, in bytes: bigger ones are cut (the original is
    # named by size and SHA-256). Keep it under the dead-letter topic's max.message.bytes.
    deadletter_max_bytes: int = Field(default=990_000, ge=65_536)
    # Per-category and per-trigger counts are kept in tumbling windows of this many seconds.
    stats_window_seconds: int = Field(default=3600, ge=60)
    # Event-time bounds (stream/core/eventtime.py): an event further than this ahead of its record
    # timestamp, or ahead of / behind its stream's watermark, is dead-lettered (the backtest counts
    # it). The past bound must stay above the policy's lateness_seconds.
    max_event_ahead_seconds: float = Field(default=3600.0, ge=0)
    max_event_ahead_of_stream_seconds: float = Field(default=7 * 86400.0, ge=0)
    max_event_behind_stream_seconds: float = Field(default=7 * 86400.0, ge=0)
    # The calibration agent judges decisions against outcomes live (stream/worker/judging.py).
    calibration_enabled: bool = True
    # How long a closed conversation is remembered for judging; None: the policy's reopen window
    # plus its lateness. At most this many conversations per customer are kept.
    calibration_horizon_hours: float | None = Field(default=None, gt=0)
    calibration_max_conversations: int = Field(default=200, ge=1)
    # The calibration agent takes batches of up to `batch_size` records, waiting at most this
    # long: nobody waits on a judgement, and every batch costs a wake-up, a memory write per
    # customer and a produce request, so it waits longer than the customer agent.
    calibration_batch_wait_seconds: float = Field(default=0.5, gt=0.0)
    # A stretch of work with no await in it holds every other agent, the customer agent's
    # decisions included, for its whole length: the calibration agent and the idle sweep hand
    # the event loop back after this long, and go on only once nothing else is ready
    # (stream/worker/batches.py, TimeSlices), so a decision waits for at most one slice of it.
    work_slice_seconds: float = Field(default=0.002, gt=0.0)
    # The agent folds up to this many records at a time, waiting at most this long for them:
    # one state write per customer per batch, at the cost of up to the wait in latency.
    batch_size: int = Field(default=1000, ge=1)
    batch_wait_seconds: float = Field(default=0.01, gt=0.0)
    # Decoded customer states kept in front of the table (least recently used dropped first).
    state_cache_size: int = Field(default=20_000, ge=1)
    # A flush of the folded states begins this long after the last one, or sooner when the cache
    # is full of unwritten states; its writes (one changelog record per customer per flush) go out
    # over the next few batches, about 2 ms of them with each, so no batch holds the event loop
    # for the whole flush. Decisions do not wait for it; offsets are acked after its last write.
    state_flush_seconds: float = Field(default=1.0, ge=0.0)
    # How the consumer fetches: the broker answers once this many bytes are there or after this
    # wait. Faust's minimum of one byte made a fetch request per record or two under paced
    # traffic, most of the worker's CPU at a few hundred events/s (stream/worker/fetching.py).
    fetch_min_bytes: int = Field(default=16_384, ge=1)
    fetch_max_wait_ms: int = Field(default=10, ge=0)
    # How long the producer gathers records before a request: without a linger every changelog
    # write and output record is its own produce request, and batching them is most of the
    # throughput, at up to the linger in latency.
    producer_linger_seconds: float = Field(default=0.01, ge=0.0)
    # Event-time order across the input topics: how long an input with records not yet read may
    # hold the others back (Kafka Streams' max.task.idle.ms), and how many records may be held.
    order_idle_ms: float = Field(default=1000.0, ge=0.0)
    order_max_held: int = Field(default=50_000, ge=1)
    # The idle sweep (stream/worker/sweep.py): every this many seconds, up to this many keys of
    # each partition are visited and expired by the partition's event time; 0 switches it off.
    idle_sweep_seconds: float = Field(default=10.0, ge=0.0)
    idle_sweep_keys_per_tick: int = Field(default=1_000, ge=1)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def time_bounds(self) -> TimeBounds:
        return TimeBounds(
            ahead_of_record_ms=int(self.max_event_ahead_seconds * 1000),
            ahead_of_stream_ms=int(self.max_event_ahead_of_stream_seconds * 1000),
            behind_stream_ms=int(self.max_event_behind_stream_seconds * 1000),
        )

    def confluent_config(self) -> dict[str, Any]:
        """librdkafka client settings, security included (stream.security checks and builds it)."""
        config = client_security(self).librdkafka()
        # librdkafka's own log lines go through the project's logging, not straight to stderr.
        config["logger"] = librdkafka_log()
        return config

    def registry(self) -> RegistryConfig | None:
        """The schema-registry client settings of every client (worker, CLI commands, demo,
        export), TLS included, from the one security builder; None without a registry URL."""
        if not self.schema_registry_url:
            return None
        return client_security(self).registry(self.schema_registry_url)


def settings_problem(exc: ValidationError) -> str:
    """One sentence naming the environment variable of each invalid setting and what is wrong."""
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        variable = f"ESCALATION_{name}"
        if name.endswith("BOOTSTRAP_SERVERS"):
            # Either variable sets it; name the one the user set.
            variable = next(
                (v for v in _BOOTSTRAP_VARIABLES if v in os.environ), _BOOTSTRAP_VARIABLES[0]
            )
        given = error.get("input")
        secret = "PASSWORD" in name
        shown = f"={given}" if isinstance(given, str | int | float) and not secret else ""
        problems.append(f"{variable}{shown}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)
