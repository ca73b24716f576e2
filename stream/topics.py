"""Topic definitions as code: `topics/*.yaml` is the contract, and this makes a cluster match it.

A topic's partitions, retention and cleanup policy are part of the product, not of whoever created
the topic first: the customer agent's per-customer state is only correct when the input topics are
co-partitioned, and a compacted account topic silently becoming `delete` loses snapshots. So every
topic is declared in one YAML file, validated here, created from it, and checked against it on every
deploy. Drift is reported, never "fixed" behind the operator's back: configs are realigned, but
partitions only grow when asked, because growing them moves keys between partitions.

A definition states the production replication factor; a smaller cluster (the one-node development
broker) gets as many replicas as it has brokers, and the report says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from confluent_kafka import KafkaError, KafkaException

# The names below are the documented public API of confluent_kafka.admin, which re-exports them
# without `__all__`, so strict mypy needs to be told they are exported.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stream.broker import require_broker
from stream.errors import BadInputError
from stream.logs import librdkafka_log
from stream.yaml_errors import yaml_problem

DEFAULT_DIRECTORY: Final[Path] = Path(__file__).resolve().parent.parent / "topics"

# Event type -> the input topic that carries it. Every input is keyed by customer_id and read
# together by the customer agent: they must have the same partition count so one partition owns
# everything about a customer.
EVENT_TOPICS: Final[Mapping[str, str]] = {
    "message": "support.messages",
    "sentiment": "support.sentiment",
    "contact": "support.contacts",
    "account": "support.accounts",
    "outcome": "ticketing.outcomes",
}
INPUT_TOPICS: Final[tuple[str, ...]] = tuple(EVENT_TOPICS.values())

CLEANUP_POLICIES: Final[frozenset[str]] = frozenset({"delete", "compact", "compact,delete"})
REQUIRED_CONFIGS: Final[tuple[str, ...]] = ("cleanup.policy", "retention.ms")
# Kafka's own rule for topic names (kafka.common.internals.Topic).
_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_AVRO_FULLNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")

Status = Literal["created", "ok", "updated", "drift", "error"]


class TopicDefinitionError(BadInputError):
    """A file under `topics/` is not a valid definition; the message names the file."""


class CopartitionError(BadInputError):
    """Input topics would not be co-partitioned, so per-customer state would be split."""


class KeyDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["string"]
    description: str = Field(min_length=1)


class ValueDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_name: str = Field(alias="schema", pattern=_AVRO_FULLNAME.pattern)


class TopicDefinition(BaseModel):
    """One topic's contract, as read from `topics/<name>.yaml`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_TOPIC_NAME.pattern)
    description: str = Field(min_length=1)
    partitions: int = Field(ge=1)
    replication_factor: int = Field(ge=1)
    config: dict[str, str]
    key: KeyDefinition
    value: ValueDefinition
    producers: tuple[str, ...] = Field(min_length=1)
    consumers: tuple[str, ...] = Field(min_length=1)

    @field_validator("description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("description must be one line")
        return value.strip()

    @field_validator("config", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # Kafka configs are strings on the wire; YAML turns `retention.ms: 604800000` into an int
        # and `true` into a bool, which would then never compare equal to what the broker reports.
        if isinstance(value, Mapping):
            return {
                str(k): (str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in value.items()
            }
        return value

    @field_validator("config")
    @classmethod
    def _check_config(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [key for key in REQUIRED_CONFIGS if key not in value]
        if missing:
            raise ValueError(f"config must set {', '.join(missing)}")
        policy = _normalize_policy(value["cleanup.policy"])
        if policy not in CLEANUP_POLICIES:
            raise ValueError(
                f"config cleanup.policy {value['cleanup.policy']!r} is not one of "
                f"{', '.join(sorted(CLEANUP_POLICIES))}"
            )
        try:
            retention = int(value["retention.ms"])
        except ValueError:
            raise ValueError(
                f"config retention.ms {value['retention.ms']!r} is not an integer"
            ) from None
        if retention < -1:
            raise ValueError("config retention.ms must be -1 (forever) or a positive duration")
        return {**value, "cleanup.policy": policy}

    def renamed(self, name: str) -> TopicDefinition:
        """The same contract under another name, e.g. a per-test copy on a shared broker."""
        return TopicDefinition.model_validate({**self.model_dump(by_alias=True), "name": name})


class TopicReport(BaseModel):
    """What ensuring one topic found or did; `detail` is meant for a human reading a deploy log."""

    model_config = ConfigDict(frozen=True)

    topic: str
    status: Status
    detail: str = ""

    @property
    def is_problem(self) -> bool:
        return self.status in ("drift", "error")


def _normalize_policy(policy: str) -> str:
    parts = sorted({part.strip() for part in policy.split(",") if part.strip()})
    return ",".join(parts)


def load_definitions(directory: Path | None = None) -> dict[str, TopicDefinition]:
    """Reads every `*.yaml` in `directory` (default: the repo's `topics/`), by topic name."""
    directory = DEFAULT_DIRECTORY if directory is None else directory
    if not directory.is_dir():
        raise TopicDefinitionError(f"{directory}: no such directory of topic definitions")
    definitions: dict[str, TopicDefinition] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            # From the open file, so a syntax or encoding error names it, not `<unicode string>`.
            with path.open("rb") as definition_file:
                raw = yaml.safe_load(definition_file)
        except yaml.YAMLError as exc:
            raise TopicDefinitionError(f"{path}: {yaml_problem(exc)}") from exc
        except OSError as exc:
            raise TopicDefinitionError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            definition = TopicDefinition.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(file)'}: {error['msg']}"
                for error in exc.errors()
            )
            raise TopicDefinitionError(f"{path}: {problems}") from exc
        if definition.name != path.stem:
            raise TopicDefinitionError(
                f"{path}: name {definition.name!r} does not match the file name {path.stem!r}"
            )
        definitions[definition.name] = definition
    if not definitions:
        raise TopicDefinitionError(f"{directory}: no *.yaml topic definitions")
    return definitions


def topic_names(directory: Path | None = None) -> list[str]:
    """Names of all defined topics, sorted."""
    return sorted(load_definitions(directory))


def check_copartitioned(
    defs: Mapping[str, TopicDefinition], topics: Sequence[str] = INPUT_TOPICS
) -> None:
    """Raises `CopartitionError` unless `topics` are all defined, alike keyed and partitioned."""
    missing = [name for name in topics if name not in defs]
    if missing:
        raise CopartitionError(f"input topics not defined: {', '.join(missing)}")
    counts = {name: defs[name].partitions for name in topics}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{name}={count}" for name, count in counts.items())
        raise CopartitionError(f"input topics must have the same partition count: {listing}")
    key_types = {defs[name].key.type for name in topics}
    if len(key_types) > 1:
        raise CopartitionError(f"input topics must share one key type, found {sorted(key_types)}")


def admin_config_from_bootstrap(bootstrap: str) -> dict[str, str | int | float | bool]:
    """Admin client settings for a plain bootstrap address (the local broker, CI)."""
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "escalation-stream-topics",
        "socket.timeout.ms": 10000,
    }


def _config_equal(key: str, actual: str | None, wanted: str) -> bool:
    if actual is None:
        return False
    if key == "cleanup.policy":
        return _normalize_policy(actual) == _normalize_policy(wanted)
    return actual.strip() == wanted.strip()


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        error: KafkaError = exc.args[0]
        return f"{error.name()}: {error.str()}"
    return str(exc) or type(exc).__name__


def _already_exists(exc: BaseException) -> bool:
    return (
        isinstance(exc, KafkaException)
        and bool(exc.args)
        and isinstance(exc.args[0], KafkaError)
        and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    )


def _result(future: Future[Any], timeout: float) -> BaseException | None:
    try:
        future.result(timeout=timeout)
    except Exception as exc:  # the admin API reports per-topic failures through its futures
        return exc
    return None


def _existing_topics(metadata: ClusterMetadata) -> dict[str, tuple[int, int]]:
    """Partition count and replication factor of each topic that exists."""
    found: dict[str, tuple[int, int]] = {}
    for name, topic in metadata.topics.items():
        if topic.error is not None and topic.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            continue
        replicas = min((len(p.replicas) for p in topic.partitions.values()), default=0)
        found[name] = (len(topic.partitions), replicas)
    return found


def _wait_visible(
    admin: AdminClient, names: Iterable[str], timeout: float
) -> dict[str, tuple[int, int]]:
    """Metadata of topics that were just reported as existing, which may lag by a moment."""
    pending = set(names)
    found: dict[str, tuple[int, int]] = {}
    deadline = time.monotonic() + timeout
    attempts = 0
    while pending and time.monotonic() < deadline and attempts < 50:
        attempts += 1
        existing = _existing_topics(admin.list_topics(timeout=timeout))
        for name in list(pending):
            if name in existing and existing[name][0] > 0:
                found[name] = existing[name]
                pending.discard(name)
        if pending:
            time.sleep(0.2)
    return found


class _Outcome:
    """Findings for one topic, folded into a single report at the end."""

    _RANK: Final[dict[str, int]] = {"ok": 0, "created": 1, "updated": 2, "drift": 3, "error": 4}

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.notes: list[str] = []
        self.status: Status = "ok"

    def add(self, status: Status, note: str) -> None:
        if self._RANK[status] > self._RANK[self.status]:
            self.status = status
        if note:
            self.notes.append(note)

    def report(self) -> TopicReport:
        return TopicReport(topic=self.topic, status=self.status, detail="; ".join(self.notes))


def ensure_topics(
    admin_config: Mapping[str, str | int | float | bool],
    defs: Mapping[str, TopicDefinition] | Iterable[TopicDefinition],
    *,
    apply: bool = True,
    grow_partitions: bool = False,
    timeout: float = 30.0,
) -> list[TopicReport]:
    """Makes the cluster match the definitions as far as is safe, and reports per topic.

    Missing topics are created and differing configs are set (only the keys a definition lists);
    with `apply=False` both are reported as drift instead. Partition counts that differ are drift,
    except that `grow_partitions=True` raises a count that is too low. Running it twice in a row
    reports every topic `ok`.
    """
    definitions = list(defs.values()) if isinstance(defs, Mapping) else list(defs)
    admin = AdminClient({"logger": librdkafka_log(), **admin_config})
    metadata = require_broker(admin_config, timeout, admin)
    brokers = max(len(metadata.brokers), 1)
    existing = _existing_topics(metadata)
    outcomes = {d.name: _Outcome(d.name) for d in definitions}

    def replicas_for(definition: TopicDefinition) -> int:
        return min(definition.replication_factor, brokers)

    # 1. Create what is missing.
    missing = [d for d in definitions if d.name not in existing]
    raced: list[str] = []
    if missing and apply:
        futures = admin.create_topics(
            [
                NewTopic(
                    d.name,
                    num_partitions=d.partitions,
                    replication_factor=replicas_for(d),
                    config=dict(d.config),
                )
                for d in missing
            ],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for d in missing:
            failure = _result(futures[d.name], timeout)
            if failure is None:
                note = f"{d.partitions} partitions"
                if replicas_for(d) < d.replication_factor:
                    note += (
                        f", replication factor {replicas_for(d)} "
                        f"(defined {d.replication_factor}, cluster has {brokers} broker(s))"
                    )
                outcomes[d.name].add("created", note)
            elif _already_exists(failure):
                raced.append(d.name)
            else:
                outcomes[d.name].add("error", f"create failed: {_error_text(failure)}")
    elif missing:
        for d in missing:
            outcomes[d.name].add(
                "drift", f"does not exist (defined with {d.partitions} partitions)"
            )
    if raced:
        existing.update(_wait_visible(admin, raced, timeout))
        for name in raced:
            if name not in existing:
                outcomes[name].add("error", "created concurrently but not visible in metadata")

    # 2. Partitions and replication of the topics that were already there.
    present = [d for d in definitions if d.name in existing]
    grow: list[TopicDefinition] = []
    for d in present:
        partitions, replicas = existing[d.name]
        if partitions < d.partitions and grow_partitions and apply:
            grow.append(d)
        elif partitions != d.partitions:
            note = f"has {partitions} partitions, defined {d.partitions}"
            if partitions > d.partitions:
                note += " (Kafka cannot reduce partitions; recreate the topic to fix)"
            elif not grow_partitions:
                note += " (pass grow_partitions to add partitions; this moves keys)"
            outcomes[d.name].add("drift", note)
        if replicas < replicas_for(d):
            outcomes[d.name].add(
                "drift", f"has replication factor {replicas}, defined {replicas_for(d)}"
            )
    if grow:
        futures = admin.create_partitions(
            [NewPartitions(d.name, d.partitions) for d in grow],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for d in grow:
            failure = _result(futures[d.name], timeout)
            before = existing[d.name][0]
            if failure is None:
                outcomes[d.name].add("updated", f"partitions {before} -> {d.partitions}")
            else:
                outcomes[d.name].add(
                    "error", f"partitions {before} -> {d.partitions} failed: {_error_text(failure)}"
                )

    # 3. Configs listed in the definitions of the topics that were already there.
    if present:
        resources = {d.name: ConfigResource(ResourceType.TOPIC, d.name) for d in present}
        described = admin.describe_configs(list(resources.values()), request_timeout=timeout)
        changes: dict[str, list[tuple[str, str | None, str]]] = {}
        for d in present:
            try:
                entries: dict[str, ConfigEntry] = described[resources[d.name]].result(
                    timeout=timeout
                )
            except Exception as exc:
                outcomes[d.name].add("error", f"describe configs failed: {_error_text(exc)}")
                continue
            for key, wanted in d.config.items():
                entry = entries.get(key)
                actual = entry.value if entry is not None else None
                if not _config_equal(key, actual, wanted):
                    changes.setdefault(d.name, []).append((key, actual, wanted))
        if changes and apply:
            alter = {
                name: ConfigResource(
                    ResourceType.TOPIC,
                    name,
                    incremental_configs=[
                        ConfigEntry(key, wanted, incremental_operation=AlterConfigOpType.SET)
                        for key, _, wanted in diffs
                    ],
                )
                for name, diffs in changes.items()
            }
            altered = admin.incremental_alter_configs(list(alter.values()), request_timeout=timeout)
            for name, diffs in changes.items():
                failure = _result(altered[alter[name]], timeout)
                listing = ", ".join(f"{key} {actual} -> {wanted}" for key, actual, wanted in diffs)
                if failure is None:
                    outcomes[name].add("updated", listing)
                else:
                    outcomes[name].add("error", f"{listing} failed: {_error_text(failure)}")
        else:
            for name, diffs in changes.items():
                for key, actual, wanted in diffs:
                    outcomes[name].add("drift", f"{key} is {actual}, defined {wanted}")

    return [outcomes[d.name].report() for d in definitions]


def format_reports(reports: Sequence[TopicReport]) -> str:
    """A table for a terminal or deploy log, with a one-line summary at the end."""
    if not reports:
        return "no topics"
    width = max(len(r.topic) for r in reports)
    lines = [f"{r.topic:<{width}}  {r.status:<7}  {r.detail}".rstrip() for r in reports]
    counts: dict[str, int] = {}
    for report in reports:
        counts[report.status] = counts.get(report.status, 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    lines.append(f"{len(reports)} topics: {summary}")
    return "\n".join(lines)
