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

Records are folded in batches (the customer agent's size and wait settings): each customer's
memory is read and decoded once per batch and written once, and judgements go to the producer
without waiting for each; the batch is acknowledged once all of that is handed over. One table
write per record used to be most of the worker's CPU on a backlog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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
from stream.serde import serde_for_topic
from stream.settings import Settings
from stream.worker import metrics
from stream.worker.batches import StateTable, TimeSlices, batches
from stream.worker.deadletters import deadletter_key, deliver_until_written
from stream.worker.declarations import kept_table, raw_topic
from stream.worker.decoding import TopicDecoder, Undecoded
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
#: `load(customer_id, partition)`: the customer's stored memory record, or None.
LoadMemory = Callable[[str, int], Any]
Item = Decision | ContactEvent | OutcomeEvent


@dataclass(slots=True)
class Judged:
    """What one record gives: the customer's new memory and judgements to publish, or, for a
    record that cannot be used, the reason and, when this agent owns it, its dead letter."""

    customer_id: str | None = None
    memory: dict[str, Any] | None = None
    publish: list[tuple[bytes, bytes]] = field(default_factory=list)
    reason: str | None = None
    deadletter: bytes | None = None


@dataclass(slots=True)
class BatchJudged:
    """What one batch gives: the memory of each customer it touched (customer id -> partition and
    memory record), the judgements to publish, and the records it could not use."""

    memories: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    publish: list[tuple[bytes, bytes]] = field(default_factory=list)
    refused: list[tuple[RawRecord, Judged]] = field(default_factory=list)


class Judging:
    """Decodes one record of the three topics and folds it; no Faust in here, so it is tested
    without a broker."""

    def __init__(
        self, settings: Settings, policy: Callable[[], Policy], deadletter: DeadLetterer
    ) -> None:
        self._policy = policy
        self._settings = settings
        self._deadletter = deadletter
        self._decoder = TopicDecoder(
            _SOURCES,
            topic=settings.topic,
            registry=settings.registry(),
            unknown="topic {topic!r} is not judged here",
        )
        self.output = serde_for_topic(OUTPUT_TOPIC, settings.registry())
        self.skipped = 0

    @property
    def topics(self) -> list[str]:
        return list(self._decoder.kinds)

    def handle(self, raw: RawRecord, load: Callable[[str], Any]) -> Judged:
        """The judged outcome of one record; never raises for a bad record or a failed fold."""
        item = self._item(raw)
        if isinstance(item, Judged):
            return item
        try:
            policy = self._policy()
            loaded = load(item.customer_id)
            memory = JudgingMemory.from_record(loaded) if loaded is not None else None
            memory, out = self._remember(memory, item, policy)
        except Exception as exc:  # a bug in one customer's fold must not stop the partition
            return self._refused(raw, "processing", f"{type(exc).__name__}: {exc}")
        return Judged(item.customer_id, memory.to_record(), out)

    def handle_batch(self, records: Iterable[RawRecord], load: LoadMemory) -> BatchJudged:
        """A batch folded over memories decoded once: each touched customer's memory is written
        once, whatever number of its records the batch holds. Never raises for a bad record or a
        failed fold; a fold that raises leaves the customer's memory as the batch's earlier
        records made it."""
        batch = self.begin(load)
        batch.fold(records)
        memories = {c: (partition, memory) for c, partition, memory in batch.written()}
        return BatchJudged(memories, batch.publish, batch.refused)

    def begin(self, load: LoadMemory) -> JudgingBatch:
        """A batch to fold in as many parts as the caller likes (see JudgingBatch)."""
        return JudgingBatch(self, load, self._policy())

    def _item(self, raw: RawRecord) -> Item | Judged:
        """The decoded decision, closed contact or outcome; else what to do with the record."""
        decoded = self._decoder.decode(raw.topic, raw.value)
        if isinstance(decoded, Undecoded):
            return self._refused(raw, decoded.error_type, decoded.reason, decoded.kind or "")
        kind, record = decoded
        try:
            item: Item
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
        return item

    def _remember(
        self,
        memory: JudgingMemory | None,
        item: Item,
        policy: Policy,
        judge_limits: tuple[JudgeSettings, MemoryLimits] | None = None,
    ) -> tuple[JudgingMemory, list[tuple[bytes, bytes]]]:
        """`judge_limits`: the policy's judge settings and memory limits, when the caller has
        them already (a batch reads them once: the limits cost a few microseconds a record)."""
        if judge_limits is None:
            judge_limits = self.judge_limits(policy)
        memory, judged = remember(memory, item, *judge_limits)
        out = [(j.conversation_id.encode(), self.output.encode(j.to_record())) for j in judged]
        for judgement in judged:
            metrics.record_judgement(judgement.verdict)
        return memory, out

    def judge_limits(self, policy: Policy) -> tuple[JudgeSettings, MemoryLimits]:
        return JudgeSettings.from_policy(policy), limits_for(self._settings, policy)

    def _restore(
        self,
        customer_id: str,
        memories: dict[str, JudgingMemory],
        folded: dict[str, tuple[int, list[Item]]],
        load: LoadMemory,
        policy: Policy,
    ) -> None:
        """Undo a fold that raised half-way: `remember` changes the memory in place, so it is
        read again from the table and the batch's earlier records of the customer folded again
        (`remember` is deterministic). When even that fails, the customer keeps the stored
        memory and nothing of this batch is written for it."""
        memories.pop(customer_id, None)
        done = folded.get(customer_id)
        if done is None:
            return
        try:
            loaded = load(customer_id, done[0])
            memory = JudgingMemory.from_record(loaded) if loaded is not None else None
            judge_limits = self.judge_limits(policy)
            for item in done[1]:
                memory, _ = remember(memory, item, *judge_limits)
        except Exception:
            folded.pop(customer_id)
            return
        if memory is not None:
            memories[customer_id] = memory

    def _refused(self, raw: RawRecord, error_type: str, reason: str, kind: str = "") -> Judged:
        self.skipped += 1
        if kind in _LETTERED_BY_CUSTOMER_AGENT:
            log.warning(
                "calibration_skipped",
                **raw.where,
                reason=reason[:300],
                dead_lettered_by="customer-decisions",
            )
            return Judged(reason=reason)
        return Judged(reason=reason, deadletter=self._deadletter(raw, error_type, reason))


class JudgingBatch:
    """One batch folded record by record, so the agent can hand the event loop back between
    records (stream/worker/batches.py, TimeSlices), with what `handle_batch` promises: one
    policy for the whole batch, each customer's memory read and decoded once and written once,
    however many records of the customer the batch holds and however many parts it is folded in.
    """

    def __init__(self, judging: Judging, load: LoadMemory, policy: Policy) -> None:
        self._judging = judging
        self._load = load
        self._policy = policy
        self._judge_limits = judging.judge_limits(policy)
        self._memories: dict[str, JudgingMemory] = {}
        self._folded: dict[str, tuple[int, list[Item]]] = {}
        self.publish: list[tuple[bytes, bytes]] = []
        self.refused: list[tuple[RawRecord, Judged]] = []

    def fold(self, records: Iterable[RawRecord]) -> None:
        judging, memories, folded = self._judging, self._memories, self._folded
        for raw in records:
            item = judging._item(raw)
            if isinstance(item, Judged):
                if item.reason is not None:
                    self.refused.append((raw, item))
                continue
            customer_id = item.customer_id
            try:
                memory = memories.get(customer_id)
                if memory is None:
                    loaded = self._load(customer_id, raw.partition)
                    memory = JudgingMemory.from_record(loaded) if loaded is not None else None
                memory, published = judging._remember(
                    memory, item, self._policy, self._judge_limits
                )
            except Exception as exc:  # a bug in one customer's fold must not stop the partition
                self.refused.append(
                    (raw, judging._refused(raw, "processing", f"{type(exc).__name__}: {exc}"))
                )
                judging._restore(customer_id, memories, folded, self._load, self._policy)
                continue
            memories[customer_id] = memory
            done = folded.get(customer_id)
            if done is None:
                folded[customer_id] = (raw.partition, [item])
            else:
                done[1].append(item)
            self.publish.extend(published)

    def written(self) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """(customer id, partition, memory record) of each customer the batch touched, encoded
        one at a time so the caller can hand the loop back between them."""
        for customer_id, (partition, _) in self._folded.items():
            yield customer_id, partition, self._memories[customer_id].to_record()


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
    sources = raw_topic(app, *judging.topics)
    output = raw_topic(app, settings.topic(OUTPUT_TOPIC))
    deadletters = raw_topic(app, settings.topic("support.deadletter"))
    memories = kept_table(
        app,
        JUDGING_TABLE,
        partitions=settings.partitions,
        help="Per-customer facts of conversations still within their judging horizon.",
    )

    async def send(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
        await (await topic.send(key=key, value=value))

    @app.agent(sources, name="calibration-judge")
    async def judge_outcomes(stream: faust.StreamT[bytes]) -> None:
        """Thin glue: fold a batch into the customers' memories, write each touched memory once,
        publish what changed without waiting, then ack the batch.

        Faust's commit flushes the producer before it commits, so an acked offset never runs
        ahead of its record's memory write and judgements (at least once, as the customer agent).
        """
        table = StateTable(memories)
        await table.verify_at_start(judging.topics)
        admit = getattr(app.consumer, "admit", None)  # the worker's AtLeastOnceConsumer
        # Nobody waits on a judgement, but decisions wait on whatever holds the loop: the batch
        # is folded and written in slices of `work_slice_seconds`, the loop handed back between.
        slices = TimeSlices(settings.work_slice_seconds)
        async for fetched in batches(
            stream, settings.batch_size, settings.calibration_batch_wait_seconds, lambda: False
        ):
            slices.start()
            # A record arriving after one this agent missed waits for it: the consumer seeks
            # its partition back (stream/worker/consumer.py), and it comes again, unacked.
            batch = [e for e in fetched if admit is None or admit(e.message, "calibration-judge")]
            for event in batch:
                table.remember(event)
            judged = judging.begin(table.get)
            for event in batch:
                judged.fold((RawRecord.of(event.message),))
                await slices.pause()
            for record, refused in judged.refused:
                if refused.deadletter is None:
                    continue
                where = record.where
                log.warning(
                    "dead_letter", agent="calibration-judge", **where, reason=refused.reason
                )
                # The record is acknowledged only once its dead letter is written.
                await deliver_until_written(
                    partial(send, deadletters, deadletter_key(record.key), refused.deadletter),
                    where=where,
                )
            for customer_id, partition, memory in judged.written():
                table.set(customer_id, partition, memory)
                await slices.pause()
            for key, value in judged.publish:
                output.send_soon(key=key, value=value)
            for event in batch:
                await stream.ack(event)
