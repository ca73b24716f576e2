"""`escalation lag`: the worker group's consumer lag, measured from outside the workers.

Read from the broker with the admin API (the group's committed offsets, each partition's end
offset), so it answers when every worker is down, the way kafka-lag-exporter and Burrow do. The
time lag of a partition is the age of its oldest unconsumed record: the record at the committed
offset, read with a probe consumer that is assigned, never subscribed, so it joins no group and
commits nothing.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream.errors import BrokerUnreachableError, EscalationError, RunError, UsageError

# librdkafka's "no committed offset" sentinel (OFFSET_INVALID).
_NO_OFFSET = -1001


class LagError(RunError):
    """The lag cannot be measured (the broker did not answer, offsets refused); says why."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    """The group's committed offset; None when the group never committed on this partition."""
    start: int
    end: int
    oldest_unconsumed_ms: int | None
    """Append timestamp of the next record the group will read; None when there is none."""

    @property
    def position(self) -> int:
        """Where the group resumes: its commit, or the log start (auto.offset.reset=earliest)."""
        if self.committed is None:
            return self.start
        return max(self.committed, self.start)

    @property
    def lag(self) -> int:
        return max(0, self.end - self.position)

    def time_lag_seconds(self, now: float) -> float:
        if self.lag == 0 or self.oldest_unconsumed_ms is None:
            return 0.0
        return max(0.0, now - self.oldest_unconsumed_ms / 1000)


@dataclass(frozen=True, slots=True)
class LagReport:
    group: str
    partitions: tuple[PartitionLag, ...]
    measured_at: float

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def by_topic(self) -> dict[str, list[PartitionLag]]:
        grouped: dict[str, list[PartitionLag]] = {}
        for p in self.partitions:
            grouped.setdefault(p.topic, []).append(p)
        return grouped

    def max_time_lag_seconds(self) -> float:
        return max((p.time_lag_seconds(self.measured_at) for p in self.partitions), default=0.0)


class LagProbe:
    """Measures one group's lag on a set of topics; reusable across refreshes (--watch, --serve)."""

    def __init__(
        self, client_config: dict[str, Any], group: str, topics: Sequence[str], timeout: float = 10
    ) -> None:
        self.group = group
        self.topics = list(topics)
        self._timeout = timeout
        self._bootstrap = str(client_config.get("bootstrap.servers", ""))
        self._admin = AdminClient(client_config)
        self._consumer = KafkaConsumer(
            {
                **client_config,
                "group.id": f"{group}.lag-probe-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )

    def close(self) -> None:
        self._consumer.close()

    def measure(self) -> LagReport:
        tps = self._partitions()
        ends = self._offsets(tps, OffsetSpec.latest())
        starts = self._offsets(tps, OffsetSpec.earliest())
        committed = self._committed(tps)
        rows = [
            PartitionLag(
                tp.topic,
                tp.partition,
                committed.get((tp.topic, tp.partition)),
                starts[(tp.topic, tp.partition)],
                ends[(tp.topic, tp.partition)],
                None,
            )
            for tp in tps
        ]
        stamps = self._oldest_unconsumed([r for r in rows if r.lag > 0])
        rows = [
            PartitionLag(
                r.topic,
                r.partition,
                r.committed,
                r.start,
                r.end,
                stamps.get((r.topic, r.partition)),
            )
            for r in rows
        ]
        return LagReport(self.group, tuple(rows), time.time())

    def _partitions(self) -> list[TopicPartition]:
        try:
            metadata = self._admin.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise BrokerUnreachableError(self._bootstrap, self._timeout) from exc
        tps: list[TopicPartition] = []
        for name in self.topics:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                # Exit 1, as backtest, export, replay and the worker do on a missing topic: the
                # command is right, the cluster is not ready (`escalation topics` creates it).
                raise LagError(f"topic {name!r} does not exist")
            tps.extend(TopicPartition(name, p) for p in sorted(topic.partitions))
        return tps

    def _offsets(self, tps: list[TopicPartition], spec: Any) -> dict[tuple[str, int], int]:
        futures = self._admin.list_offsets(
            {TopicPartition(tp.topic, tp.partition): spec for tp in tps},
            request_timeout=self._timeout,
        )
        result = {}
        for tp, future in futures.items():
            try:
                result[(tp.topic, tp.partition)] = int(future.result(timeout=self._timeout).offset)
            except KafkaException as exc:
                raise LagError(f"offsets of {tp.topic}[{tp.partition}]: {exc.args[0]}") from exc
        return result

    def _committed(self, tps: list[TopicPartition]) -> dict[tuple[str, int], int]:
        request = [ConsumerGroupTopicPartitions(self.group, tps)]
        future = self._admin.list_consumer_group_offsets(request, request_timeout=self._timeout)[
            self.group
        ]
        try:
            answer = future.result(timeout=self._timeout)
        except KafkaException as exc:
            raise LagError(f"offsets of group {self.group!r}: {exc.args[0]}") from exc
        return {
            (tp.topic, tp.partition): int(tp.offset)
            for tp in answer.topic_partitions
            if tp.offset != _NO_OFFSET and tp.offset >= 0
        }

    def _oldest_unconsumed(self, rows: list[PartitionLag]) -> dict[tuple[str, int], int]:
        """The append timestamp of the record at each lagging partition's resume position."""
        if not rows:
            return {}
        wanted = {(r.topic, r.partition) for r in rows}
        self._consumer.assign([TopicPartition(r.topic, r.partition, r.position) for r in rows])
        stamps: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + self._timeout
        try:
            while wanted - stamps.keys() and time.monotonic() < deadline:
                for msg in self._consumer.consume(len(wanted), timeout=0.5):
                    key = (msg.topic(), msg.partition())
                    if msg.error() or key not in wanted or key in stamps:
                        continue
                    kind, ms = msg.timestamp()
                    if ms > 0:
                        stamps[key] = ms
                    self._consumer.incremental_unassign([TopicPartition(*key)])
        finally:
            self._consumer.unassign()
        return stamps


class LagCollector(Collector):
    """Serves the last report as Prometheus metrics; names as kafka-lag-exporter's, prefixed."""

    def __init__(self) -> None:
        self.report: LagReport | None = None
        self.polls = 0
        self.errors = 0

    def collect(self) -> Iterator[Metric]:
        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily(
            "escalation_consumergroup_lag_messages",
            "Records not yet consumed by the group, per partition (end - committed offset).",
            labels=labels,
        )
        seconds = GaugeMetricFamily(
            "escalation_consumergroup_lag_seconds",
            "Age of the oldest record the group has not consumed, per partition.",
            labels=labels,
        )
        committed = GaugeMetricFamily(
            "escalation_consumergroup_committed_offset",
            "The group's committed offset (the log start when it never committed).",
            labels=labels,
        )
        end = GaugeMetricFamily(
            "escalation_partition_end_offset",
            "The partition's end offset (next offset to be written).",
            labels=labels,
        )
        report = self.report
        if report is not None:
            for p in report.partitions:
                values = [report.group, p.topic, str(p.partition)]
                lag.add_metric(values, p.lag)
                seconds.add_metric(values, p.time_lag_seconds(report.measured_at))
                committed.add_metric(values, p.position)
                end.add_metric(values, p.end)
        yield from (lag, seconds, committed, end)
        polled = GaugeMetricFamily(
            "escalation_lag_last_poll_timestamp_seconds",
            "When the lag exporter last measured the group successfully.",
        )
        polled.add_metric([], report.measured_at if report else 0)
        yield polled
        errors = CounterMetricFamily(
            "escalation_lag_poll_errors", "Measurements that failed (broker unreachable, ...)."
        )
        errors.add_metric([], self.errors)
        yield errors


def render(report: LagReport, prefix: str = "") -> Any:
    """A rich table: one row per partition, a total per topic, and the group's total."""
    from rich.table import Table

    stamp = time.strftime("%H:%M:%S", time.localtime(report.measured_at))
    caption = (f"topics {prefix}*  ·  " if prefix else "") + f"measured {stamp}"
    table = Table(
        title=f"consumer group {report.group}",
        caption=caption,
        title_justify="left",
        caption_justify="left",
    )
    for column in ("topic", "partition", "committed", "end", "lag", "time lag"):
        table.add_column(column, justify="left" if column == "topic" else "right", no_wrap=True)
    for topic, rows in report.by_topic().items():
        name = topic.removeprefix(prefix)
        for i, p in enumerate(rows):
            table.add_row(
                name if i == 0 else "",
                str(p.partition),
                "-" if p.committed is None else str(p.committed),
                str(p.end),
                str(p.lag),
                _age(p.time_lag_seconds(report.measured_at)),
            )
        table.add_row(
            "",
            "[bold]total[/bold]",
            "",
            str(sum(p.end for p in rows)),
            f"[bold]{sum(p.lag for p in rows)}[/bold]",
            _age(max(p.time_lag_seconds(report.measured_at) for p in rows)),
            end_section=True,
        )
    table.add_row(
        "[bold]all topics[/bold]",
        "",
        "",
        str(sum(p.end for p in report.partitions)),
        f"[bold]{report.total}[/bold]",
        _age(report.max_time_lag_seconds()),
    )
    return table


def summary_line(report: LagReport, prefix: str = "") -> str:
    """The report as one plain line, for `--watch` into a file or a pipe, where a live table that
    redraws itself would be escape codes or nothing: time, total, time lag, each topic's lag."""
    stamp = time.strftime("%H:%M:%S", time.localtime(report.measured_at))
    topics = ", ".join(
        f"{topic.removeprefix(prefix)} {sum(p.lag for p in rows)}"
        for topic, rows in report.by_topic().items()
    )
    return (
        f"{stamp} group {report.group}: lag {report.total}, "
        f"time lag {_age(report.max_time_lag_seconds())} ({topics})"
    )


def _age(seconds: float) -> str:
    if seconds <= 0:
        return "0s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def watch_reports(probe: LagProbe, interval: float, count: int | None) -> Iterable[LagReport]:
    """Measures every `interval` seconds; `count` bounds the refreshes (None: until stopped)."""
    done = 0
    while count is None or done < count:
        if done:
            time.sleep(interval)
        yield probe.measure()
        done += 1


def serve(probe: LagProbe, host: str, port: int, interval: float, count: int | None) -> None:
    """Exports the lag on http://host:port/metrics, re-measured every `interval` seconds."""
    import structlog
    from prometheus_client import CollectorRegistry, start_http_server

    log = structlog.get_logger(__name__)
    collector = LagCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except socket.gaierror as exc:  # --host is not an address of this machine's resolver
        raise UsageError(f"cannot serve the lag on {host}:{port}: {exc.strerror}") from None
    except OSError as exc:  # the port is taken, or not this user's to bind
        raise RunError(f"cannot serve the lag on {host}:{port}: {exc.strerror or exc}") from None
    log.info("lag_exporter_listening", host=host, port=port, group=probe.group)
    try:
        done = 0
        while count is None or done < count:
            try:
                collector.report = probe.measure()
            except (EscalationError, KafkaException) as exc:  # topics may not exist yet
                collector.errors += 1
                log.warning("lag_poll_failed", error=str(exc))
            done += 1
            time.sleep(interval)
    finally:
        server.shutdown()
        thread.join(timeout=5)
