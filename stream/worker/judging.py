"""The live calibration agent: decisions, closes and outcomes in, judgements out.

It reads `escalation.decisions` (what the customer agent decided), the `closed` contacts of
`support.contacts` and `ticketing.outcomes`, all keyed by customer, keeps a bounded per-customer
memory in its own table (`stream.core.judging`), and publishes each new or changed judgement to
the compacted `escalation.calibration`, keyed by conversation. The judge is the batch one
(`stream.core.judge`), so a conversation's last judgement here equals the monthly review's.

Nothing it cannot use is dropped silently. An undecodable decision is dead-lettered here with the
reason, as the customer agent does with its inputs: only this agent reads that topic. An
undecodable contact or outcome is the same record the customer agent reads and dead-letters with
the same decoder, so it is counted and logged here, not lettered twice. A fold that raises, on any
of the three topics, is dead-lettered here ("processing"): the customer agent did not fail on it.
Each dead letter is written before the record is acknowledged, as in the customer agent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import faust
import structlog

from stream.core.decision import Decision
from stream.core.events import ContactEvent, EventError, OutcomeEvent, event_from_dict
from stream.core.judge import JudgeSettings
from stream.core.judging import JudgingMemory, MemoryLimits, remember
from stream.core.policy import Policy
from stream.core.records import RecordError
from stream.serde import SerdeError, serde_for_topic
from stream.settings import Settings
from stream.worker import metrics
from stream.worker.deadletters import deadletter_key, deliver_until_written
from stream.worker.handler import RawRecord

log = structlog.get_logger(__name__)

JUDGING_TABLE: Final[str] = "calibration-memory"
OUTPUT_TOPIC: Final[str] = "escalation.calibration"
# Whose dead letter an undecodable record of each source is (see the module docstring).
_LETTERED_BY_CUSTOMER_AGENT: Final[frozenset[str]] = frozenset({"contact", "outcome"})
_SOURCES: Final[dict[str, str]] = {
    "escalation.decisions": "decision",
    "support.contacts": "contact",
    "ticketing.outcomes": "outcome",
}


def limits_for(settings: Settings, policy: Policy) -> MemoryLimits:
    """The judging horizon: the setting, or the policy's reopen window plus its lateness."""
    hours = settings.calibration_horizon_hours
    if hours is None:
        horizon = int(policy.calibration.missed_reopen_hours * 3_600_000)
        horizon += policy.lateness_seconds * 1000
    else:
        horizon = int(hours * 3_600_000)
    return MemoryLimits(
        horizon_ms=horizon,
        idle_ms=int(policy.state.conversation_idle_hours * 3_600_000),
        max_conversations=settings.calibration_max_conversations,
    )


#: Builds the dead letter of a record: (record, error type, reason) -> encoded dead letter.
DeadLetterer = Callable[[RawRecord, str, str], bytes]


@dataclass(slots=True)
class Judged:
    """What one record gives: the customer's new memory and judgements to publish, or, for a
    record that cannot be used, the reason and, when this agent owns it, its dead letter."""

    customer_id: str | None = None
    memory: dict[str, Any] | None = None
    publish: list[tuple[bytes, bytes]] = field(default_factory=list)
    reason: str | None = None
    deadletter: bytes | None = None


class Judging:
    """Decodes one record of the three topics and folds it; no Faust in here, so it is tested
    without a broker."""

    def __init__(
        self, settings: Settings, policy: Callable[[], Policy], deadletter: DeadLetterer
    ) -> None:
        self._policy = policy
        self._settings = settings
        self._deadletter = deadletter
        self._kinds = {settings.topic(name): kind for name, kind in _SOURCES.items()}
        self._serdes = {
            settings.topic(name): serde_for_topic(name, settings.registry()) for name in _SOURCES
        }
        self.output = serde_for_topic(OUTPUT_TOPIC, settings.registry())
        self.skipped = 0

    @property
    def topics(self) -> list[str]:
        return list(self._kinds)

    def handle(self, raw: RawRecord, load: Callable[[str], Any]) -> Judged:
        """The judged outcome of one record; never raises for a bad record or a failed fold."""
        kind = self._kinds.get(raw.topic)
        if kind is None:
            return self._refused(raw, "validation", f"topic {raw.topic!r} is not judged here")
        try:
            record = self._serdes[raw.topic].decode(raw.value)
        except SerdeError as exc:
            return self._refused(raw, "decode", str(exc), kind)
        try:
            item: Decision | ContactEvent | OutcomeEvent
            if kind == "decision":
                item = Decision.from_record(record)
            else:
                event = event_from_dict(kind, record)
                if not isinstance(event, ContactEvent | OutcomeEvent):
                    raise EventError(f"a {kind} topic gave a {type(event).__name__}")
                item = event
        except (EventError, RecordError, KeyError, TypeError, ValueError) as exc:
            return self._refused(raw, "validation", f"{type(exc).__name__}: {exc}", kind)
        if isinstance(item, ContactEvent) and item.action != "closed":
            return Judged()
        try:
            policy = self._policy()
            loaded = load(item.customer_id)
            memory = JudgingMemory.from_record(loaded) if loaded is not None else None
            memory, judged = remember(
                memory, item, JudgeSettings.from_policy(policy), limits_for(self._settings, policy)
            )
            out = [(j.conversation_id.encode(), self.output.encode(j.to_record())) for j in judged]
        except Exception as exc:  # a bug in one customer's fold must not stop the partition
            return self._refused(raw, "processing", f"{type(exc).__name__}: {exc}")
        for judgement in judged:
            metrics.record_judgement(judgement.verdict)
        return Judged(item.customer_id, memory.to_record(), out)

    def _refused(self, raw: RawRecord, error_type: str, reason: str, kind: str = "") -> Judged:
        self.skipped += 1
        if kind in _LETTERED_BY_CUSTOMER_AGENT:
            log.warning(
                "calibration_skipped",
                topic=raw.topic,
                partition=raw.partition,
                offset=raw.offset,
                reason=reason[:300],
                dead_lettered_by="customer-decisions",
            )
            return Judged(reason=reason)
        return Judged(reason=reason, deadletter=self._deadletter(raw, error_type, reason))


def _declare_changelog(settings: Settings) -> None:
    """Creates the table's changelog topic before the app starts, if it is missing.

    Faust creates it at start too, but after the consumer may have read the cluster's topics:
    the table then sees a changelog of 0 partitions and refuses every write until the next
    metadata refresh (minutes). Created here, it is in the first metadata the consumer reads.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    name = f"{settings.app_id}-{JUDGING_TABLE}-changelog"
    admin = AdminClient(settings.confluent_config())
    try:
        if name in admin.list_topics(timeout=10).topics:
            return
        futures = admin.create_topics(
            [NewTopic(name, settings.partitions, config={"cleanup.policy": "compact"})]
        )
        futures[name].result(timeout=30)
    except KafkaException as exc:
        # Already created by another worker, or the cluster is slow: Faust declares it anyway.
        log.info("calibration_changelog_not_created", topic=name, reason=str(exc)[:200])


def install(
    app: faust.App,
    settings: Settings,
    policy: Callable[[], Policy],
    deadletter: DeadLetterer,
) -> None:
    """Adds the calibration agent, its table and its output topic to the worker's app."""
    if not settings.calibration_enabled:
        return
    _declare_changelog(settings)
    judging = Judging(settings, policy, deadletter)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    sources = app.topic(*judging.topics, **raw)
    output = app.topic(settings.topic(OUTPUT_TOPIC), **raw)
    deadletters = app.topic(settings.topic("support.deadletter"), **raw)
    memories = app.Table(
        JUDGING_TABLE,
        default=None,
        partitions=settings.partitions,
        key_type=str,
        options={"driver": "rocksdict"},
        help="Per-customer facts of conversations still within their judging horizon.",
    )

    async def send(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
        await (await topic.send(key=key, value=value))

    @app.agent(sources, name="calibration-judge")
    async def judge_outcomes(stream: faust.StreamT[bytes]) -> None:
        """Thin glue: fold the record into the customer's memory, publish what changed."""
        async for event in stream.events():
            message = event.message
            record = RawRecord.of(message)
            judged = judging.handle(record, memories.get)
            if judged.deadletter is not None:
                where = {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                }
                log.warning("dead_letter", agent="calibration-judge", **where, reason=judged.reason)
                # The record is acknowledged only once its dead letter is written.
                await deliver_until_written(
                    partial(send, deadletters, deadletter_key(record.key), judged.deadletter),
                    where=where,
                )
            if judged.customer_id is None:
                continue
            memories[judged.customer_id] = judged.memory
            for key, value in judged.publish:
                await output.send(key=key, value=value)
