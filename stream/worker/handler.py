"""One input record in, state and encoded outputs out: everything an agent does, without Faust.

The agent stays a loop around `RecordHandler.handle`, so every path a record can take (decoded and
decided, or dead-lettered with its reason) is testable without a broker, and the Faust glue has no
business rule in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from stream.core import statecodec
from stream.core.decision import Decision
from stream.core.events import Event, EventError, event_from_dict
from stream.core.eventtime import DEFAULT_BOUNDS, EventClock, TimeBounds
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.core.step import StepResult, step
from stream.core.triggers import TriggerError
from stream.core.turn_model import TurnModel
from stream.serde import RegistryConfig, Serde, serde_for_schema, serde_for_topic
from stream.topics import EVENT_TOPICS
from stream.worker import metrics
from stream.worker.deadletters import fit_deadletter
from stream.worker.decoding import TopicDecoder, Undecoded

# Under the broker's default record limit (message.max.bytes 1048588) and librdkafka's default
# producer limit (1000000), with room for the record's key and framing.
DEADLETTER_MAX_BYTES = 990_000

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """An input record as it came off the topic, kept whole for its dead letter."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()
    timestamp_ms: int | None = None

    @classmethod
    def of(cls, message: Any) -> RawRecord:
        """From a consumed message (Faust's, or any with its attributes; timestamp in s)."""
        return cls(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            message.headers or (),
            int(message.timestamp * 1000) if message.timestamp else None,
        )

    @property
    def where(self) -> dict[str, Any]:
        """Where the record is, as the log fields of every line about it."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


@dataclass(slots=True)
class Handled:
    """What the agent must write: the new state, and records for the output topics."""

    customer_id: str | None = None
    # The stored form of the new state (stream/core/statecodec.py), under its byte budget.
    state: bytes | None = None
    decisions: list[bytes] = field(default_factory=list)
    handoffs: list[bytes] = field(default_factory=list)
    deadletter: bytes | None = None
    reason: str | None = None
    # The decisions behind `decisions`, for the metrics of what was sent (action, trigger, ...).
    decided: list[Decision] = field(default_factory=list)
    # Triggers that failed on this record; each made its decision fail safe (hold and escalate).
    trigger_errors: tuple[TriggerError, ...] = ()
    # A message id folded before with other content: absorbed as a redelivery, logged, counted.
    conflict: str | None = None


class RecordHandler:
    """Decodes, validates and folds one record; anything that goes wrong becomes a dead letter."""

    def __init__(
        self,
        policy: Callable[[], Policy],
        *,
        topic_prefix: str = "",
        consumer: str = "escalation-stream",
        registry: RegistryConfig | None = None,
        deadletter_max_bytes: int = DEADLETTER_MAX_BYTES,
        time_bounds: TimeBounds = DEFAULT_BOUNDS,
        model: TurnModel | None = None,
        floor: Callable[[int], int | None] | None = None,
    ) -> None:
        self._policy = policy
        # The kept floor of an input partition (stream/worker/floors.py): it survives restarts
        # and takeovers, where the watermarks below start empty.
        self._floor = floor
        # The turn model `step` scores customer turns with; None is the shipped one.
        self.model = model
        # Watermarks per topic partition, in memory: the record timestamp bounds the future from
        # the first record after a restart; the stream bounds build up again as records arrive.
        self.clock = EventClock(time_bounds)
        self._deadletter_max_bytes = deadletter_max_bytes
        self._consumer = consumer
        self._decoder = TopicDecoder(
            {name: kind for kind, name in EVENT_TOPICS.items()},
            topic=lambda name: f"{topic_prefix}{name}",
            registry=registry,
            unknown="no event type is defined for topic {topic!r}",
        )
        self._decision_serde = serde_for_topic("escalation.decisions", registry)
        self._handoff_serde = serde_for_topic("escalation.handoffs", registry)
        self._deadletter_serde: Serde = serde_for_schema("escalation.DeadLetter")

    def handle(
        self, raw: RawRecord, load_state: Callable[[str], bytes | dict[str, Any] | None]
    ) -> Handled:
        parsed = self.parse(raw)
        if isinstance(parsed, Handled):
            return parsed
        try:
            raw_state = load_state(parsed.customer_id)
            state = statecodec.decode(raw_state) if raw_state is not None else None
            policy = self._policy()
            result = step(state, parsed, policy, self.model)
            self.report(result, parsed, raw, policy)
            stored = self.store(result.state, policy)
            decisions, handoffs = self.encode(result)
            return Handled(
                customer_id=parsed.customer_id,
                state=stored,
                decisions=decisions,
                handoffs=handoffs,
                decided=list(result.decisions),
                trigger_errors=result.errors,
                conflict=result.conflict,
            )
        except Exception as exc:  # a bug in one customer's fold must not stop the partition
            return self.failed(raw, exc)

    def parse(self, raw: RawRecord) -> Event | Handled:
        """The typed event of a record, or its dead letter (`Handled` with the reason)."""
        decoded = self._decoder.decode(raw.topic, raw.value)
        if isinstance(decoded, Undecoded):
            return self.dead(raw, decoded.error_type, decoded.reason)
        kind, record = decoded
        try:
            event = event_from_dict(kind, record)
        except EventError as exc:
            return self.dead(raw, "validation", str(exc))
        customer_id = event.customer_id
        # Co-partitioning is what lets one partition own a customer; a record keyed otherwise
        # would fold into a state another worker owns.
        key = raw.key
        if key is None or key != customer_id.encode():
            shown = key.decode("utf-8", "replace") if key is not None else "null"
            return self.dead(
                raw,
                "validation",
                f"key {shown!r} is not the record's customer_id {customer_id!r}",
            )
        refused = self.clock.admit(
            f"{raw.topic}[{raw.partition}]",
            event.occurred_at,
            raw.timestamp_ms,
            None if self._floor is None else self._floor(raw.partition),
        )
        if refused is not None:
            return self.dead(raw, "event_time", refused)
        return event

    def encode(self, result: StepResult) -> tuple[list[bytes], list[bytes]]:
        """The output records of one step: decisions and handoff packages, Avro-encoded."""
        return (
            [self._decision_serde.encode(d.to_record()) for d in result.decisions],
            [self._handoff_serde.encode(h.to_record()) for h in result.handoffs],
        )

    def store(self, state: CustomerState, policy: Policy) -> bytes:
        """The stored bytes of a state under the policy's byte budget (trimmed in place)."""
        stored, cut = statecodec.encode(state, policy.state.max_state_bytes)
        if cut:
            log.warning(
                "state_trimmed",
                customer_id=state.customer_id,
                cut=cut,
                bytes=len(stored),
                max_bytes=policy.state.max_state_bytes,
            )
        return stored

    def report(self, result: StepResult, event: Event, raw: RawRecord, policy: Policy) -> None:
        """Log and count what went wrong in one step: a conflicting duplicate, trigger errors."""
        where = raw.where
        if result.conflict is not None:
            log.warning(
                "conflicting_duplicate",
                customer_id=event.customer_id,
                detail=result.conflict,
                **where,
            )
        for error in result.errors:
            # Loud on purpose: a trigger error is a bug, and the escalation it caused is the
            # only other trace of it.
            log.error(
                "trigger_error",
                trigger=error.trigger,
                code=error.code,
                detail=error.detail,
                customer_id=event.customer_id,
                event_id=event.event_id,
                **where,
                policy_version=policy.version,
            )
            metrics.record_trigger_error(error.trigger)

    def dead(self, raw: RawRecord, error_type: str, reason: str) -> Handled:
        return Handled(reason=reason, deadletter=self.deadletter(raw, error_type, reason))

    def failed(self, raw: RawRecord, exc: Exception) -> Handled:
        """The dead letter of a record whose fold raised."""
        return self.dead(raw, "processing", f"{type(exc).__name__}: {exc}")

    @property
    def policy(self) -> Policy:
        return self._policy()

    def deadletter(self, raw: RawRecord, error_type: str, reason: str) -> bytes:
        """The dead letter of a record, cut to fit under the size limit when it must be."""
        metrics.record_dead_letter(error_type)
        return fit_deadletter(
            {
                "source_topic": raw.topic,
                "partition": raw.partition,
                "offset": raw.offset,
                "timestamp": raw.timestamp_ms,
                "key": raw.key,
                "value": raw.value,
                "headers": [{"key": k, "value": v} for k, v in raw.headers],
                "reason": reason,
                "error_type": error_type,
                "failed_at": int(time.time() * 1000),
                "consumer": self._consumer,
            },
            self._deadletter_serde.encode,
            self._deadletter_max_bytes,
        )
