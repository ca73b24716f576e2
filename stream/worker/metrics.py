"""Prometheus metrics of a worker: what other modules increment, and how the worker serves them.

Counters and histograms are module-level objects on one registry, so any module counts with one
line and no plumbing (`metrics.DEAD_LETTERS.labels(reason="decode").inc()`); the helper functions
below are the documented ways to record what several modules share (a handled record, a
judgement). What only the running app knows (consumer lag, state-store size, the policy in force)
is read at scrape time by `WorkerCollector`, so nobody has to remember to update a gauge.

Served at `/metrics` on the Faust web server (the worker's `web_port`, beside `/health/*`): one
port per worker for probes and scrapes. Names follow Prometheus conventions: `escalation_` prefix,
base units in the name (`_seconds`, `_bytes`), `_total` on counters. docs/operations.md lists them.

Why prometheus-client and not Faust's own Prometheus sensor: that sensor exports Faust internals
(per-stream events, table operations) in milliseconds and keeps rebalance counts as gauges, and
knows nothing of decisions, triggers or dead-letter reasons; our few framework signals (records
in per topic, rebalances) come from a small `faust.Sensor` below instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from stream.core.decision import Decision

# `_created` series double every counter for a timestamp no dashboard here reads.
prometheus_client.disable_created_metrics()
REGISTRY = CollectorRegistry()
METRICS_PATH = "/metrics"

# Latency budget of a decision is sub-second; the upper buckets keep a backlog visible (a
# replayed history's event-time latency is days, which lands in +Inf and is meant to).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

EVENTS_IN = Counter(
    "escalation_events_in_total",
    "Input records read by the customer agent, by topic.",
    ["topic"],
    registry=REGISTRY,
)
RECORDS_OUT = Counter(
    "escalation_records_out_total",
    "Records the worker sent, by topic (decisions, handoffs, dead letters, changelogs).",
    ["topic"],
    registry=REGISTRY,
)
DECISIONS = Counter(
    "escalation_decisions_total",
    "Decisions sent, by action and ticket category.",
    ["action", "category"],
    registry=REGISTRY,
)
TRIGGER_HITS = Counter(
    "escalation_trigger_hits_total",
    "Trigger hits carried by the decisions sent, by trigger and the decision's action.",
    ["trigger", "action"],
    registry=REGISTRY,
)
HANDOFFS = Counter(
    "escalation_handoffs_total",
    "Handoff packages sent (first package and revisions).",
    registry=REGISTRY,
)
JUDGEMENTS = Counter(
    "escalation_judgements_total",
    "Decisions judged against their ticket outcome, by class (false, missed, needed, ...).",
    ["judgement"],
    registry=REGISTRY,
)
DECISION_LATENCY = Histogram(
    "escalation_decision_latency_seconds",
    "From the event to its decision being sent; since=event_time (the event's occurred_at) or "
    "since=append (the broker's append timestamp of the input record).",
    ["since"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "escalation_dead_letters_total",
    "Records sent to the dead-letter topic, by reason (decode, validation, processing, policy).",
    ["reason"],
    registry=REGISTRY,
)
TRIGGER_ERRORS = Counter(
    "escalation_trigger_errors_total",
    "Triggers that could not evaluate (the decision held the action and escalated), by trigger.",
    ["trigger"],
    registry=REGISTRY,
)
IDLE_SWEPT = Counter(
    "escalation_idle_swept_total",
    "Idle customers the sweep shrank (trimmed) or deleted from the state table (gone).",
    ["result"],
    registry=REGISTRY,
)
AGENT_CRASHES = Counter(
    "escalation_agent_crashes_total",
    "Agents that crashed (Faust restarts them in place), by agent.",
    ["agent"],
    registry=REGISTRY,
)
REBALANCES = Counter(
    "escalation_rebalances_total",
    "Consumer-group rebalances this worker went through.",
    registry=REGISTRY,
)
RECOVERIES = Counter(
    "escalation_recoveries_total",
    "Table recoveries from the changelog that completed on this worker.",
    registry=REGISTRY,
)
OFFSET_HOLES = Counter(
    "escalation_offset_holes_total",
    "Input records lost between fetch and agent (the partition is sought back to them) or "
    "holding the commit (stream/worker/consumer.py), by topic.",
    ["topic"],
    registry=REGISTRY,
)
POLICY_UPDATES = Counter(
    "escalation_policy_updates_total",
    "Policies offered on the policy topic, by result (adopted, rejected).",
    ["result"],
    registry=REGISTRY,
)

POLICY_FEED_HEALTHY = Gauge(
    "escalation_policy_feed_healthy",
    "1 while the policy feed follows the policy topic and has caught up with it, else 0.",
    registry=REGISTRY,
)

# One label set per metric exists from the start, so a dashboard shows 0 rather than "no data".
for _reason in ("decode", "validation", "processing", "policy"):
    DEAD_LETTERS.labels(reason=_reason)
for _since in ("event_time", "append"):
    DECISION_LATENCY.labels(since=_since)
for _result in ("adopted", "rejected"):
    POLICY_UPDATES.labels(result=_result)


# The labelled children the hot paths use, looked up once each: `labels()` takes a lock and
# builds its key every call, a few microseconds for each record, decision and judgement.
_LATENCY_SINCE_EVENT = DECISION_LATENCY.labels(since="event_time")
_LATENCY_SINCE_APPEND = DECISION_LATENCY.labels(since="append")


@cache
def _decided(action: str, category: str) -> Any:
    return DECISIONS.labels(action=action, category=category)


@cache
def _triggered(trigger: str, action: str) -> Any:
    return TRIGGER_HITS.labels(trigger=trigger, action=action)


@cache
def _judged(judgement: str) -> Any:
    return JUDGEMENTS.labels(judgement=judgement)


@cache
def _events_in(topic: str) -> Any:
    return EVENTS_IN.labels(topic=topic)


@cache
def _records_out(topic: str) -> Any:
    return RECORDS_OUT.labels(topic=topic)


def record_decisions(
    decisions: Iterable[Decision], *, append_ms: int | None, now: float | None = None
) -> None:
    """Counts decisions that were just sent and observes their latency on both clocks."""
    sent = time.time() if now is None else now
    for decision in decisions:
        action = decision.action
        _decided(action, decision.category or "none").inc()
        for hit in decision.triggers:
            _triggered(hit.trigger, action).inc()
        _LATENCY_SINCE_EVENT.observe(max(0.0, sent - decision.occurred_at / 1000))
        if append_ms is not None:
            _LATENCY_SINCE_APPEND.observe(max(0.0, sent - append_ms / 1000))


def record_handoffs(count: int) -> None:
    if count:
        HANDOFFS.inc(count)


def record_sent(handled: Any, append_ms: int | None) -> None:
    """What the customer agent calls once a handled record's outputs are sent."""
    record_decisions(handled.decided, append_ms=append_ms)
    record_handoffs(len(handled.handoffs))


def record_dead_letter(reason: str) -> None:
    """`reason` is the dead letter's error type, a small fixed set; never the free-text reason."""
    DEAD_LETTERS.labels(reason=reason).inc()


def record_judgement(judgement: str) -> None:
    _judged(judgement).inc()


def record_trigger_error(trigger: str) -> None:
    TRIGGER_ERRORS.labels(trigger=trigger).inc()


def record_offset_hole(topic: str) -> None:
    OFFSET_HOLES.labels(topic=topic).inc()


def record_swept(result: str) -> None:
    IDLE_SWEPT.labels(result=result).inc()


def set_policy_feed_healthy(healthy: bool) -> None:
    POLICY_FEED_HEALTHY.set(1 if healthy else 0)


def record_policy_offer(adopted: bool) -> None:
    POLICY_UPDATES.labels(result="adopted" if adopted else "rejected").inc()


def exposition() -> tuple[bytes, str]:
    """The text format body and its content type, for whatever serves the endpoint."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class WorkerCollector(Collector):
    """Gauges read from the running app at scrape time: lag, state size, assignment, policy.

    Each source is a callable so that this module needs no reference to Faust internals; a
    source that fails is left out of that scrape instead of failing the whole endpoint.
    """

    def __init__(
        self,
        lag: Callable[[], Iterable[tuple[str, int, int]]],
        state: Callable[[], Iterable[tuple[str, int, int, int]]],
        policy_version: Callable[[], str],
    ) -> None:
        self._lag = lag
        self._state = state
        self._policy_version = policy_version

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "escalation_consumer_lag_messages",
            "Records in an assigned input partition not yet read by this worker.",
            labels=["topic", "partition"],
        )
        assigned = GaugeMetricFamily(
            "escalation_assigned_partitions",
            "Input partitions currently assigned to this worker.",
        )
        try:
            rows = list(self._lag())
        except Exception:  # a scrape during a rebalance must not fail the endpoint
            rows = []
        for topic, partition, value in rows:
            lag.add_metric([topic, str(partition)], value)
        assigned.add_metric([], len(rows))
        yield lag
        yield assigned

        keys = GaugeMetricFamily(
            "escalation_state_keys",
            "Estimated keys in the state store, by table and partition (RocksDB estimate).",
            labels=["table", "partition"],
        )
        size = GaugeMetricFamily(
            "escalation_state_bytes",
            "Estimated live bytes in the state store, by table and partition.",
            labels=["table", "partition"],
        )
        try:
            stores = list(self._state())
        except Exception:
            stores = []
        for table, partition, n_keys, n_bytes in stores:
            keys.add_metric([table, str(partition)], n_keys)
            size.add_metric([table, str(partition)], n_bytes)
        yield keys
        yield size

        info = InfoMetricFamily("escalation_policy", "The policy version in force.")
        info.add_metric([], {"version": self._policy_version()})
        yield info


def make_sensor(input_topics: frozenset[str]) -> Any:
    """A faust.Sensor counting input records per topic, sends per topic, and rebalances.

    It also remembers the next offset to read per input partition: the worker's view of its lag.
    """
    import faust

    class _Sensor(faust.Sensor):
        def __init__(self) -> None:
            super().__init__()
            self.next_offsets: dict[tuple[str, int], int] = {}

        def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
            topic = tp.topic
            if topic in input_topics:
                _events_in(topic).inc()
                self.next_offsets[(topic, tp.partition)] = offset + 1

        def on_send_initiated(
            self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
        ) -> Any:
            _records_out(topic).inc()
            return None

        def on_rebalance_start(self, app: Any) -> dict[str, Any]:
            REBALANCES.inc()
            return {}

    return _Sensor()


def install(
    app: Any,
    *,
    input_topics: Iterable[str],
    tables: dict[str, Any],
    policy_version: Callable[[], str],
) -> None:
    """Wires the metrics into a built app: the sensor, the scrape-time collector, `/metrics`.

    Safe to call for several apps in one process (tests): the collector of the previous app is
    replaced, not duplicated.
    """
    global _collector
    topics = frozenset(input_topics)
    sensor = make_sensor(topics)
    app.sensors.add(sensor)

    def lag() -> Iterator[tuple[str, int, int]]:
        consumer = app.consumer
        for tp in sorted(consumer.assignment()):
            if tp.topic not in topics:
                continue
            end = consumer.highwater(tp)
            seen = sensor.next_offsets.get((tp.topic, tp.partition))
            if end is None:
                continue
            position = seen if seen is not None else _read_offset(consumer, tp)
            yield tp.topic, tp.partition, max(0, end - position) if position is not None else end

    def state() -> Iterator[tuple[str, int, int, int]]:
        for name, table in tables.items():
            yield from _store_sizes(name, table)

    if _collector is not None:
        REGISTRY.unregister(_collector)
    _collector = WorkerCollector(lag, state, policy_version)
    REGISTRY.register(_collector)

    async def metrics_view(web: Any, request: Any) -> Any:
        body, content_type = exposition()
        return web.bytes(body, content_type=content_type.split(";")[0])

    async def count_recovery(app: Any, **kwargs: Any) -> None:
        # Faust sends this once the tables have caught up with their changelogs after an
        # assignment, just before the agents resume.
        RECOVERIES.inc()

    app.page(METRICS_PATH)(metrics_view)
    app.on_rebalance_complete.connect(count_recovery)


_collector: WorkerCollector | None = None


def _read_offset(consumer: Any, tp: Any) -> int | None:
    """Faust's own next-read position for a partition nothing was read from yet."""
    offsets = getattr(consumer, "_read_offset", {})
    value = offsets.get(tp)
    return int(value) if value is not None else None


def _store_sizes(name: str, table: Any) -> Iterator[tuple[str, int, int, int]]:
    """RocksDB's own estimates per partition database; nothing is iterated."""
    store = table.data
    databases = getattr(store, "_dbs", {})
    for partition, db in sorted(databases.items()):
        try:
            keys = db.property_int_value("rocksdb.estimate-num-keys") or 0
            live = db.property_int_value("rocksdb.estimate-live-data-size") or 0
            memtables = db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
        except Exception:
            continue
        yield name, int(partition), int(keys), int(live) + int(memtables)
