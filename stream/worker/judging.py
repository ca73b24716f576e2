"""The live calibration agent: decisions, closes and outcomes in, judgements out.

It reads `escalation.decisions` (what the customer agent decided), the `closed` contacts of
`support.contacts` and `ticketing.outcomes`, all keyed by customer, keeps a bounded per-customer
memory in its own table (`stream.core.judging`), and publishes each new or changed judgement to
the compacted `escalation.calibration`, keyed by conversation. The judge is the batch one
(`stream.core.judge`), so a conversation's last judgement here equals the monthly review's.

A record it cannot decode is the customer agent's to dead-letter (it reads the same input topics);
here it is counted and logged, and the agent goes on.
"""

from __future__ import annotations

from collections.abc import Callable
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

log = structlog.get_logger(__name__)

JUDGING_TABLE: Final[str] = "calibration-memory"
OUTPUT_TOPIC: Final[str] = "escalation.calibration"
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


class Judging:
    """Decodes one record of the three topics and folds it; no Faust in here, so it is tested
    without a broker."""

    def __init__(self, settings: Settings, policy: Callable[[], Policy]) -> None:
        self._policy = policy
        self._settings = settings
        self._kinds = {settings.topic(name): kind for name, kind in _SOURCES.items()}
        self._serdes = {
            settings.topic(name): serde_for_topic(name, settings.registry()) for name in _SOURCES
        }
        self.output = serde_for_topic(OUTPUT_TOPIC, settings.registry())
        self.skipped = 0

    @property
    def topics(self) -> list[str]:
        return list(self._kinds)

    def handle(
        self, topic: str, value: bytes | None, load: Callable[[str], Any]
    ) -> tuple[str | None, dict[str, Any] | None, list[tuple[bytes, bytes]]]:
        """(customer, new memory record, [(key, value) to publish]) for one record."""
        kind = self._kinds.get(topic)
        if kind is None:
            return None, None, []
        try:
            record = self._serdes[topic].decode(value)
            item: Decision | ContactEvent | OutcomeEvent
            if kind == "decision":
                item = Decision.from_record(record)
            else:
                event = event_from_dict(kind, record)
                assert isinstance(event, ContactEvent | OutcomeEvent)
                item = event
        except (SerdeError, EventError, RecordError, KeyError, TypeError) as exc:
            self.skipped += 1
            log.warning("calibration_skipped", topic=topic, reason=str(exc)[:300])
            return None, None, []
        if isinstance(item, ContactEvent) and item.action != "closed":
            return None, None, []
        policy = self._policy()
        raw = load(item.customer_id)
        memory = JudgingMemory.from_record(raw) if raw is not None else None
        memory, judged = remember(
            memory, item, JudgeSettings.from_policy(policy), limits_for(self._settings, policy)
        )
        for judgement in judged:
            metrics.record_judgement(judgement.verdict)
        out = [(j.conversation_id.encode(), self.output.encode(j.to_record())) for j in judged]
        return item.customer_id, memory.to_record(), out


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


def install(app: faust.App, settings: Settings, policy: Callable[[], Policy]) -> None:
    """Adds the calibration agent, its table and its output topic to the worker's app."""
    if not settings.calibration_enabled:
        return
    _declare_changelog(settings)
    judging = Judging(settings, policy)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    sources = app.topic(*judging.topics, **raw)
    output = app.topic(settings.topic(OUTPUT_TOPIC), **raw)
    memories = app.Table(
        JUDGING_TABLE,
        default=None,
        partitions=settings.partitions,
        key_type=str,
        options={"driver": "rocksdict"},
        help="Per-customer facts of conversations still within their judging horizon.",
    )

    @app.agent(sources, name="calibration-judge")
    async def judge_outcomes(stream: faust.StreamT[bytes]) -> None:
        """Thin glue: fold the record into the customer's memory, publish what changed."""
        async for event in stream.events():
            message = event.message
            customer, memory, publish = judging.handle(message.topic, message.value, memories.get)
            if customer is None:
                continue
            memories[customer] = memory
            for key, value in publish:
                await output.send(key=key, value=value)
