"""Worker metrics without a broker: what a handled record counts, and the scrape-time gauges."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.core.policy import default_policy
from stream.serde import serde_for_topic
from stream.testing import message_record
from stream.worker import metrics
from stream.worker.handler import RawRecord, RecordHandler

T0 = 1_767_225_600_000


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def scrape(collector: metrics.WorkerCollector) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The collector alone on a registry of its own: a worker app built by another test in this
    process registers its collector on the module's registry."""
    registry = CollectorRegistry()
    registry.register(collector)
    body = generate_latest(registry)
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            families.setdefault(s.name, []).append((s.labels, s.value))
    return families


def explicit_request(**fields: Any) -> bytes:
    record = message_record(**{"occurred_at": T0, **fields})
    return serde_for_topic("support.messages").encode(record)


def test_a_sent_decision_counts_action_category_trigger_and_both_latencies() -> None:
    handler = RecordHandler(default_policy, consumer="tests")
    raw = RawRecord("support.messages", 0, 7, b"c-1", explicit_request(), (), T0 + 1_000)
    handled = handler.handle(raw, lambda _: None)
    assert [d.action for d in handled.decided] == ["escalate"]
    before = {
        "decisions": sample("escalation_decisions_total", action="escalate", category="billing"),
        "hits": sample(
            "escalation_trigger_hits_total", trigger="explicit_request", action="escalate"
        ),
        "handoffs": sample("escalation_handoffs_total"),
        "event": sample("escalation_decision_latency_seconds_count", since="event_time"),
        "append_sum": sample("escalation_decision_latency_seconds_sum", since="append"),
    }

    metrics.record_decisions(handled.decided, append_ms=T0 + 1_000, now=T0 / 1000 + 3.0)
    metrics.record_handoffs(len(handled.handoffs))

    assert sample("escalation_decisions_total", action="escalate", category="billing") == (
        before["decisions"] + 1
    )
    assert sample(
        "escalation_trigger_hits_total", trigger="explicit_request", action="escalate"
    ) == (before["hits"] + 1)
    assert sample("escalation_handoffs_total") == before["handoffs"] + len(handled.handoffs) > 0
    assert sample("escalation_decision_latency_seconds_count", since="event_time") == (
        before["event"] + 1
    )
    # Sent 3 s after the event and 2 s after the broker appended the record.
    assert (
        sample("escalation_decision_latency_seconds_sum", since="append") - before["append_sum"]
        == 2.0
    )


def test_every_dead_letter_is_counted_by_its_error_type() -> None:
    handler = RecordHandler(default_policy, consumer="tests")
    before = sample("escalation_dead_letters_total", reason="decode")
    handled = handler.handle(RawRecord("support.messages", 0, 1, b"c-1", b"\x00junk"), dict.get)
    assert handled.deadletter is not None
    assert sample("escalation_dead_letters_total", reason="decode") == before + 1


def test_the_collector_reports_lag_state_and_the_policy_in_force() -> None:
    collector = metrics.WorkerCollector(
        lag=lambda: [("support.messages", 0, 5), ("support.messages", 1, 0)],
        state=lambda: [("customer-state", 0, 12, 4096)],
        policy_version=lambda: "2026.11-test",
    )
    families = scrape(collector)
    assert ({"topic": "support.messages", "partition": "0"}, 5.0) in families[
        "escalation_consumer_lag_messages"
    ]
    assert families["escalation_assigned_partitions"] == [({}, 2.0)]
    assert families["escalation_state_keys"] == [
        ({"table": "customer-state", "partition": "0"}, 12)
    ]
    assert families["escalation_state_bytes"][0][1] == 4096
    assert families["escalation_policy_info"] == [({"version": "2026.11-test"}, 1.0)]


def test_a_failing_source_leaves_its_gauges_out_instead_of_failing_the_scrape() -> None:
    def broken() -> list[tuple[str, int, int]]:
        raise RuntimeError("rebalancing")

    collector = metrics.WorkerCollector(broken, lambda: [], lambda: "v1")
    families = scrape(collector)
    assert "escalation_consumer_lag_messages" not in families
    assert families["escalation_assigned_partitions"] == [({}, 0.0)]
    assert families["escalation_policy_info"] == [({"version": "v1"}, 1.0)]


def test_every_counter_follows_the_naming_conventions() -> None:
    for family in text_string_to_metric_families(metrics.exposition()[0].decode()):
        assert family.name.startswith("escalation_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
