"""Event sources for the backtest: JSON Lines files and time ranges of the input topics.

Both yield typed events (`stream.core.events.Event`) and keep what they could not use: a malformed
line or an undecodable record either stops the run with an `InputError` naming where it is
(`on_error="stop"`, the default) or is skipped, counted, listed in the report and printed on
stderr (`on_error="skip"`). Nothing is dropped without a trace.

Ordering:
- A JSON Lines file is processed in file order, exactly as written: a recorded file is the order
  a worker consumed, and the backtest must give the decisions that worker gave.
- A Kafka time range (of record timestamps, see `KafkaSource`) is merged into event-time order
  (`occurred_at`) across every partition of every input topic. Each partition is read in offset
  order into one heap; an event leaves the heap once every unfinished partition has read past its
  time plus `reorder_ms` (a watermark per partition), so the order is exact for any event that is
  at most `reorder_ms` older than the newest earlier event of its partition. Ties are broken by
  event type (account, contact, message, sentiment, outcome: state before the turns it explains),
  then partition, then offset. An event later than the bound is still processed, when read; both
  sources count "out of order" events (an event older than one already processed for the same
  customer) in their summary.
"""

from __future__ import annotations

import heapq
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, TextIO, TypeAlias

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from stream.broker import require_broker
from stream.core.events import EVENT_TYPES, Event, EventError, event_from_dict
from stream.core.eventtime import DEFAULT_BOUNDS, EventClock, TimeBounds
from stream.errors import EXIT_FAILED, BadInputError, RunError, UsageError
from stream.serde import RegistryConfig, Serde, SerdeError, serde_for_topic
from stream.settings import Settings
from stream.topics import EVENT_TOPICS

OnError: TypeAlias = Literal["stop", "skip"]
ON_ERROR_CHOICES: Final[tuple[OnError, ...]] = ("stop", "skip")

# Within one millisecond, events that set context come before the turns they explain.
TIE_RANK: Final[Mapping[str, int]] = {
    "account": 0,
    "contact": 1,
    "message": 2,
    "sentiment": 3,
    "outcome": 4,
}

# The report lists this many skipped records in full; beyond it only the count grows, so a file
# of garbage cannot make the report as large as the file.
MAX_LISTED_SKIPS: Final[int] = 10_000
# Past this many, stderr says once that the rest are in the report, instead of flooding a terminal.
MAX_PRINTED_SKIPS: Final[int] = 100

DEFAULT_REORDER_MS: Final[int] = 5 * 60 * 1000
DEFAULT_TIMEOUT_S: Final[float] = 3600.0
DEFAULT_IDLE_TIMEOUT_S: Final[float] = 60.0
# Records held in the reorder heap before partitions that are ahead in event time are paused.
DEFAULT_MAX_BUFFERED: Final[int] = 200_000
_METADATA_TIMEOUT_S: Final[float] = 15.0
_LEADER_RETRY_S: Final[float] = 0.5
_LEADER_MOVING: Final = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)
_POLL_S: Final[float] = 0.5
_BATCH: Final[int] = 2000
_MIN_IDLE_STEP_S: Final[float] = 0.05


class SourceError(RunError):
    """The source itself failed (missing topic, broker unreachable, timeout): no partial result."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """One input record the run could not use, and where to find it."""

    source: str
    reason: str
    line: int | None = None
    partition: int | None = None
    offset: int | None = None

    @property
    def where(self) -> str:
        if self.line is not None:
            return f"{self.source}:{self.line}"
        if self.partition is not None:
            return f"{self.source}[{self.partition}]@{self.offset}"
        return self.source

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"where": self.where, "reason": self.reason}
        if self.line is not None:
            record["line"] = self.line
        if self.partition is not None:
            record["topic"] = self.source
            record["partition"] = self.partition
            record["offset"] = self.offset
        return record


class InputError(BadInputError):
    """An input record that stops the run (`on_error="stop"`); the message says where and why.

    A bad line of an event file is the caller's to fix (exit 2); see `RecordError` for topics.
    """

    # Printed after the message by `stream.command_io.fail`.
    hint: ClassVar[str] = " (use --on-error skip to skip bad records)"

    def __init__(self, skipped: Skipped) -> None:
        super().__init__(f"{skipped.where}: {skipped.reason}")
        self.skipped = skipped


class RecordError(InputError):
    """An undecodable record in a topic: the command was right, the run failed on the cluster's
    data (exit 1); `--on-error skip` gets past it."""

    exit_code: ClassVar[int] = EXIT_FAILED


def check_on_error(value: str) -> OnError:
    if value == "stop":
        return "stop"
    if value == "skip":
        return "skip"
    raise UsageError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {value!r}")


class EventSource:
    """Counts, ordering facts and skipped records that every source reports next to its events."""

    ordering: str = ""

    def __init__(
        self,
        name: str,
        on_error: OnError,
        warn: TextIO | None,
        bounds: TimeBounds = DEFAULT_BOUNDS,
    ) -> None:
        self.name = name
        self.on_error = check_on_error(on_error)
        # The worker's gate on event time: what it dead-letters, the backtest refuses and counts.
        self.clock = EventClock(bounds)
        self.refused: list[Skipped] = []
        self.refused_count = 0
        self.events = 0
        self.by_type: Counter[str] = Counter()
        self.skipped: list[Skipped] = []
        self.skipped_count = 0
        self.out_of_order = 0
        self.outside_range = 0
        self._warn = warn
        self._last_at: dict[str, int] = {}

    def __iter__(self) -> Iterator[Event]:
        raise NotImplementedError

    def estimated_total(self) -> int | None:
        """How many records the source expects to yield, for a progress bar; None if unknown."""
        return None

    def _reject(self, skipped: Skipped) -> None:
        if self.on_error == "stop":
            raise InputError(skipped) if skipped.line is not None else RecordError(skipped)
        self.skipped_count += 1
        if len(self.skipped) < MAX_LISTED_SKIPS:
            self.skipped.append(skipped)
        if self._warn is not None:
            if self.skipped_count <= MAX_PRINTED_SKIPS:
                print(f"skipped {skipped.where}: {skipped.reason}", file=self._warn)
            elif self.skipped_count == MAX_PRINTED_SKIPS + 1:
                print(
                    f"more than {MAX_PRINTED_SKIPS} records skipped; the report lists them",
                    file=self._warn,
                )

    def _admit(
        self, stream: str | None, event: Event, record_ms: int | None, where: Skipped
    ) -> bool:
        """Whether the event passes the event-time bounds; a refused one is counted and listed
        (never a stop: the worker dead-letters it and goes on, and so does the backtest)."""
        why = self.clock.admit(stream, event.occurred_at, record_ms)
        if why is None:
            return True
        self.refused_count += 1
        if len(self.refused) < MAX_LISTED_SKIPS:
            self.refused.append(
                Skipped(
                    where.source,
                    why,
                    line=where.line,
                    partition=where.partition,
                    offset=where.offset,
                )
            )
        if self._warn is not None and self.refused_count <= MAX_PRINTED_SKIPS:
            print(f"refused {where.where}: {why}", file=self._warn)
        return False

    def _accept(self, event: Event) -> None:
        self.events += 1
        self.by_type[event.type] += 1
        customer = event.customer_id
        last = self._last_at.get(customer)
        if last is not None and event.occurred_at < last:
            self.out_of_order += 1
        else:
            self._last_at[customer] = event.occurred_at

    def summary(self) -> dict[str, Any]:
        """The `input` section of the report."""
        return {
            "source": self.name,
            "events": self.events,
            "by_type": {kind: self.by_type[kind] for kind in EVENT_TYPES if self.by_type[kind]},
            "on_error": self.on_error,
            "skipped_count": self.skipped_count,
            "skipped": [s.to_record() for s in self.skipped],
            "skipped_listed_max": MAX_LISTED_SKIPS,
            "out_of_order_events": self.out_of_order,
            "outside_range": self.outside_range,
            "refused_event_time_count": self.refused_count,
            "refused_event_time": [s.to_record() for s in self.refused],
            "ordering": self.ordering,
        }


def _line_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8: byte {exc.start} ({exc.reason})"
    return str(exc)


# A bound decoder on text skips json.loads' per-call encoding sniffing of bytes: about 1 us of the
# 10 us a line costs to parse (bench/BACKTEST.md).
_decode_json = json.JSONDecoder().decode


def parse_line(raw: bytes | str) -> Event:
    """A JSON Lines record `{"type": ..., ...fields}` as a typed event; ValueError says why not."""
    record = _decode_json(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    if not isinstance(record, dict):
        raise BadInputError(f"expected a JSON object, got {type(record).__name__}")
    kind = record.pop("type", None)
    if kind is None:
        raise BadInputError(f'missing "type"; expected one of {", ".join(EVENT_TYPES)}')
    if not isinstance(kind, str):
        raise BadInputError(f'"type" must be a string, got {kind!r}')
    return event_from_dict(kind, record)


class JsonlSource(EventSource):
    """Events from a JSON Lines file, in file order, with line numbers for every problem."""

    ordering = "file order (as written; a recorded file is the order a worker consumed it)"

    def __init__(
        self,
        path: Path,
        on_error: OnError = "stop",
        *,
        warn: TextIO | None = sys.stderr,
        bounds: TimeBounds = DEFAULT_BOUNDS,
        now_ms: int | None = None,
    ) -> None:
        super().__init__(str(path), on_error, warn, bounds)
        self.path = path
        # When the backtest runs: no event of a history can be later than this (plus the bound).
        # None: a file's events are not bounded at all.
        self.now_ms = now_ms

    def estimated_total(self) -> int | None:
        # Counting newlines in 1 MiB chunks costs a small fraction of parsing the same bytes.
        lines = 0
        last = b"\n"
        with self.path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        return lines + (last != b"\n")

    def __iter__(self) -> Iterator[Event]:
        accept = self._accept
        now_ms = self.now_ms
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, 1):
                if raw.isspace():
                    continue  # blank lines carry no event, e.g. a trailing newline
                try:
                    event = parse_line(raw)
                except (ValueError, EventError) as exc:
                    self._reject(Skipped(self.name, _line_error(exc), line=number))
                    continue
                # A file has no partitions, record timestamps or required order: only the future
                # is bounded, by the time the backtest runs (stream/core/eventtime.py).
                where = Skipped(self.name, "", line=number)
                if now_ms is not None and not self._admit(None, event, now_ms, where):
                    continue
                accept(event)
                yield event


def topics_with_prefix(prefix: str = "") -> dict[str, str]:
    """Event type -> topic name, for a deployment that prefixes its topic names."""
    return {kind: f"{prefix}{topic}" for kind, topic in EVENT_TOPICS.items()}


def settings_source(
    settings: Settings,
    start_ms: int,
    end_ms: int,
    *,
    bootstrap: str | None = None,
    topics: Mapping[str, str] | None = None,
    on_error: OnError = "stop",
    warn: TextIO | None = sys.stderr,
) -> KafkaSource:
    """The input topics over a time range as a command reads them: the settings' prefix, security,
    registry and event-time bounds, `bootstrap` in place of the settings' servers when given.

    The cluster is asked first, so a dead address is one `BrokerUnreachableError` naming it, not
    a timeout deep in the run.
    """
    config = settings.confluent_config()
    if bootstrap:
        config["bootstrap.servers"] = bootstrap
    require_broker(config, settings.broker_wait_seconds)
    return KafkaSource(
        config,
        start_ms,
        end_ms,
        topics=topics or topics_with_prefix(settings.topic_prefix),
        on_error=on_error,
        registry=settings.registry(),
        warn=warn,
        bounds=settings.time_bounds(),
    )


@dataclass(slots=True)
class _Partition:
    topic: str
    kind: str
    partition: int
    start: int
    end: int  # exclusive: the first offset outside the range
    next_offset: int = -1
    max_seen: int | None = None

    @property
    def label(self) -> str:
        return f"{self.topic}[{self.partition}]"


def _leader_moving(exc: BaseException | None) -> bool:
    """Whether a failed lookup is a partition's leader not being known yet (worth asking again)."""
    if not (isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError)):
        return False
    return exc.args[0].code() in _LEADER_MOVING


def _kafka_text(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return f"{exc.args[0].name()}: {exc.args[0].str()}"
    return str(exc) or type(exc).__name__


def _check_key(key: bytes | str | None, customer_id: Any) -> None:
    # The worker dead-letters a record keyed otherwise (it would fold into a state another
    # partition owns); the backtest refuses it the same way, or the two would not agree.
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(customer_id, str) or key != customer_id.encode():
        shown = key.decode("utf-8", "replace") if key is not None else "null"
        raise ValueError(f"key {shown!r} is not the record's customer_id {customer_id!r}")


class KafkaSource(EventSource):
    """Events of a time range of the input topics, all partitions, merged into event-time order.

    The range is of record timestamps (what `offsets_for_times` searches; the event time of a
    replay can be anything): records with `start_ms` <= timestamp < `end_ms`. Per partition the read
    goes from the first offset at or after `start_ms - reorder_ms` to the first at or after
    `end_ms + reorder_ms`, so a record whose timestamp is out of order by up to that bound is still
    found at either edge; records read in those margins but outside the range are counted as
    `outside_range`, not yielded. The read never goes past the end offset seen when it starts, so
    a live topic cannot keep it going. Reading stops with `SourceError` after `timeout_s` of waiting
    on the broker in total, or `idle_timeout_s` of polls in a row that bring nothing while
    partitions are unfinished; a partial range is never reported as complete.
    """

    def __init__(
        self,
        client_config: Mapping[str, Any],
        start_ms: int,
        end_ms: int,
        *,
        topics: Mapping[str, str] | None = None,
        on_error: OnError = "stop",
        registry: RegistryConfig | None = None,
        reorder_ms: int = DEFAULT_REORDER_MS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        warn: TextIO | None = sys.stderr,
        bounds: TimeBounds = DEFAULT_BOUNDS,
    ) -> None:
        topics = dict(EVENT_TOPICS if topics is None else topics)
        unknown = sorted(set(topics) - set(EVENT_TOPICS))
        if unknown:
            raise UsageError(
                f"unknown event type {unknown[0]!r} in the topic mapping; "
                f"expected some of {', '.join(EVENT_TYPES)}"
            )
        if not topics:
            raise UsageError("no topics to read")
        if end_ms <= start_ms:
            raise UsageError(f"the range is empty: end {end_ms} is not after start {start_ms}")
        if reorder_ms < 0:
            raise UsageError("reorder_ms must not be negative")
        super().__init__(", ".join(topics.values()), on_error, warn, bounds)
        self.ordering = (
            f"event-time order across all partitions (ties: account, contact, message, sentiment, "
            f"outcome, then partition, offset); exact for events at most {reorder_ms} ms older "
            f"than the newest earlier event of their partition"
        )
        self.client_config = dict(client_config)
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.topics = topics
        self.registry = registry
        self.reorder_ms = reorder_ms
        self.timeout_s = timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_buffered = max_buffered
        self.planned: int | None = None
        self.partitions: list[_Partition] = []

    def _consumer(self) -> Consumer:
        config: dict[str, Any] = {
            **self.client_config,
            # A fresh group that never commits: a backtest must not move anyone's offsets.
            "group.id": f"escalation-backtest-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
        return Consumer(config)

    def _plan(self, consumer: Consumer) -> list[_Partition]:
        try:
            metadata = consumer.list_topics(timeout=_METADATA_TIMEOUT_S)
        except KafkaException as exc:
            raise SourceError(f"cannot reach the cluster: {_kafka_text(exc)}") from exc
        parts: list[_Partition] = []
        for kind, topic in self.topics.items():
            found = metadata.topics.get(topic)
            if found is None or found.error is not None or not found.partitions:
                raise SourceError(f"topic {topic!r} ({kind} events) does not exist")
            for number in sorted(found.partitions):
                parts.append(_Partition(topic, kind, number, -1, -1))
        # A partition whose leader is still being elected (a topic just created, a broker just
        # restarted) answers "not leader" for a moment: asked again, bounded, before giving up.
        deadline = time.monotonic() + _METADATA_TIMEOUT_S
        while True:
            try:
                return self._place(consumer, parts)
            except SourceError as exc:
                if not _leader_moving(exc.__cause__) or time.monotonic() > deadline:
                    raise
            time.sleep(_LEADER_RETRY_S)

    def _place(self, consumer: Consumer, parts: list[_Partition]) -> list[_Partition]:
        """Each partition's offsets of the range's start and end, and its end offset."""
        try:
            starts = consumer.offsets_for_times(
                [
                    TopicPartition(p.topic, p.partition, max(self.start_ms - self.reorder_ms, 0))
                    for p in parts
                ],
                timeout=_METADATA_TIMEOUT_S,
            )
            ends = consumer.offsets_for_times(
                [
                    TopicPartition(p.topic, p.partition, self.end_ms + self.reorder_ms)
                    for p in parts
                ],
                timeout=_METADATA_TIMEOUT_S,
            )
            highs = [
                consumer.get_watermark_offsets(
                    TopicPartition(p.topic, p.partition), timeout=_METADATA_TIMEOUT_S, cached=False
                )
                for p in parts
            ]
        except KafkaException as exc:
            raise SourceError(f"cannot look up offsets: {_kafka_text(exc)}") from exc
        for part, start, end, marks in zip(parts, starts, ends, highs, strict=True):
            for found_tp in (start, end):
                if found_tp.error is not None:
                    raise SourceError(
                        f"{part.label}: offsets for times: {found_tp.error.str()}"
                    ) from KafkaException(found_tp.error)
            if marks is None:
                raise SourceError(f"{part.label}: no end offset")
            high = marks[1]
            # A negative offset: no record at or after that time (empty range, or up to the end).
            part.start = start.offset if start.offset >= 0 else high
            part.end = min(end.offset if end.offset >= 0 else high, high)
            part.next_offset = part.start
        return parts

    def estimated_total(self) -> int | None:
        return self.planned

    def _records(self) -> Iterator[tuple[str, dict[str, Any], Skipped, Event | None]]:
        """Decoded records in merged order, each with where it came from.

        A record that cannot be decoded comes at once (it has no event time to be ordered by) as an
        empty record whose `Skipped` carries the reason; the others carry an empty reason.
        """
        serdes: dict[str, Serde] = {
            kind: serde_for_topic(EVENT_TOPICS[kind], self.registry) for kind in self.topics
        }
        consumer = self._consumer()
        try:
            parts = self._plan(consumer)
            self.partitions = parts
            self.planned = sum(max(p.end - p.start, 0) for p in parts)
            active = {(p.topic, p.partition): p for p in parts if p.start < p.end}
            if not active:
                return
            consumer.assign(
                [TopicPartition(p.topic, p.partition, p.start) for p in active.values()]
            )
            heap: list[tuple[int, int, int, int, str, str, dict[str, Any], Event]] = []
            paused: set[tuple[str, int]] = set()
            # Both limits count time spent waiting on the broker only: the caller's processing
            # between polls (a slow policy, a large release from the heap) is not the broker's.
            waited = idle = 0.0
            while active:
                if waited > self.timeout_s or idle > self.idle_timeout_s:
                    pending = ", ".join(
                        f"{p.label} at {p.next_offset} of {p.end}" for p in active.values()
                    )
                    limit = "timeout" if waited > self.timeout_s else "idle timeout"
                    raise SourceError(f"{limit} before the end of the range: {pending}")
                polled = time.monotonic()
                messages = consumer.consume(num_messages=_BATCH, timeout=_POLL_S)
                took = time.monotonic() - polled
                waited += took
                # A poll that returns at once with only errors still counts, so the loop is bounded.
                idle += max(took, _MIN_IDLE_STEP_S)
                for message in messages:
                    error = message.error()
                    topic, partition = message.topic(), message.partition()
                    key = (topic or "", -1 if partition is None else partition)
                    part = active.get(key)
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            if part is not None:
                                del active[key]
                            continue
                        if error.fatal():
                            raise SourceError(f"consumer failed: {error.str()}")
                        continue  # transient; librdkafka retries, the idle timeout bounds it
                    if part is None:
                        continue
                    offset = message.offset()
                    if offset is None or offset < part.next_offset:
                        continue  # re-delivered after a pause
                    if offset >= part.end:
                        del active[key]
                        continue
                    idle = 0.0
                    part.next_offset = offset + 1
                    if part.next_offset >= part.end:
                        del active[key]
                    kind_of_time, stamp = message.timestamp()
                    if kind_of_time != TIMESTAMP_NOT_AVAILABLE and not (
                        self.start_ms <= stamp < self.end_ms
                    ):
                        self.outside_range += 1
                        continue
                    try:
                        record = serdes[part.kind].decode(message.value())
                        occurred = record["occurred_at"]
                        _check_key(message.key(), record.get("customer_id"))
                        event = event_from_dict(part.kind, record)
                    except (SerdeError, KeyError, ValueError) as exc:
                        where = Skipped(
                            part.topic, str(exc), partition=part.partition, offset=offset
                        )
                        yield part.kind, {}, where, None
                        continue
                    # The worker's gate, applied as the worker meets the records: per partition,
                    # in offset order, before the merge into event-time order.
                    stamp_ms = stamp if kind_of_time != TIMESTAMP_NOT_AVAILABLE else None
                    where = Skipped(part.topic, "", partition=part.partition, offset=offset)
                    if not self._admit(f"{part.topic}[{part.partition}]", event, stamp_ms, where):
                        continue
                    if part.max_seen is None or occurred > part.max_seen:
                        part.max_seen = occurred
                    heapq.heappush(
                        heap,
                        (
                            occurred,
                            TIE_RANK[part.kind],
                            part.partition,
                            offset,
                            part.topic,
                            part.kind,
                            record,
                            event,
                        ),
                    )
                watermark = self._watermark(active.values())
                while heap and heap[0][0] < watermark:
                    item = heapq.heappop(heap)
                    where = Skipped(item[4], "", partition=item[2], offset=item[3])
                    yield item[5], item[6], where, item[7]
                self._flow(consumer, active, paused, watermark, len(heap))
            while heap:
                item = heapq.heappop(heap)
                where = Skipped(item[4], "", partition=item[2], offset=item[3])
                yield item[5], item[6], where, item[7]
        finally:
            consumer.close()

    def _watermark(self, active: Any) -> float:
        """Event time below which no unfinished partition can still deliver an in-bound event."""
        mark = float("inf")
        for part in active:
            if part.max_seen is None:
                return float("-inf")
            mark = min(mark, part.max_seen - self.reorder_ms)
        return mark

    def _flow(
        self,
        consumer: Consumer,
        active: Mapping[tuple[str, int], _Partition],
        paused: set[tuple[str, int]],
        watermark: float,
        buffered: int,
    ) -> None:
        # The partition holding the watermark back is never paused, so the heap always drains.
        if buffered > self.max_buffered:
            ahead = [
                key
                for key, part in active.items()
                if key not in paused
                and part.max_seen is not None
                and part.max_seen - self.reorder_ms > watermark
            ]
            if ahead:
                consumer.pause([TopicPartition(t, p) for t, p in ahead])
                paused.update(ahead)
        elif paused:
            resume = [key for key in paused if key in active]
            if resume:
                consumer.resume([TopicPartition(t, p) for t, p in resume])
            paused.clear()

    def items(self) -> Iterator[tuple[str, dict[str, Any], Event]]:
        """(event type, decoded record, typed event) in merged order; bad records per on_error."""
        for kind, record, where, event in self._records():
            if where.reason or event is None:
                self._reject(where)
                continue
            self._accept(event)
            yield kind, record, event

    def __iter__(self) -> Iterator[Event]:
        for _, _, event in self.items():
            yield event
