"""`make demo`: the main job end to end on the local broker, then a summary and one handoff package.

Runs on topics of its own (a fresh prefix per run) so a second demo never sees the first one's
customers, and deletes them at the end; every process it starts is stopped before it returns.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import ValidationError

from stream.broker import require_broker
from stream.command_io import fail
from stream.errors import EscalationError, UsageError
from stream.replay import CORPUS_PATH, ReplayConfig, iter_events
from stream.replay.kafka import default_encoder, produce
from stream.serde import RegistryConfig, serde_for_topic
from stream.settings import REPO_ROOT, Settings, settings_problem
from stream.topics import (
    EVENT_TOPICS,
    INPUT_TOPICS,
    ensure_topics,
    format_reports,
    load_definitions,
)
from stream.worker.readiness import wait_until_consuming

KAFKA = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"


def _sh(*args: str) -> int:
    return subprocess.run(args, check=False).returncode


def _end_offsets(config: dict[str, Any], topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({**config, "group.id": f"demo-{uuid.uuid4().hex}"})
    try:
        ends = {}
        for topic in topics:
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                ends[(topic, p)] = consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
        return ends
    finally:
        consumer.close()


def _committed(config: dict[str, Any], group: str, partitions: list[tuple[str, int]]) -> int:
    consumer = Consumer({**config, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        consumer.close()


def _read_all(
    config: dict[str, Any], topic: str, schema_topic: str, registry: RegistryConfig | None = None
) -> list[dict[str, Any]]:
    serde = serde_for_topic(schema_topic, registry)
    consumer = Consumer(
        {
            **config,
            "group.id": f"demo-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        records: list[dict[str, Any]] = []
        remaining = sum(ends.values())
        deadline = time.monotonic() + 120
        while remaining > 0 and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error():
                    continue
                records.append(serde.decode(msg.value()))
                remaining -= 1
        return records
    finally:
        consumer.close()


def operations_summary(
    metrics_url: str, config: dict[str, Any], group: str, topics: list[str], prefix: str
) -> str:
    """What `curl` on the worker's metrics shows, one total per metric, and the final lag."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families
    from rich.console import Console

    from stream.lag import LagProbe, render

    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        body = response.read().decode()
    lines = []
    for family in text_string_to_metric_families(body):
        if not family.name.startswith("escalation_"):
            continue
        samples = [s for s in family.samples if not s.name.endswith(("_bucket", "_sum"))]
        total = sum(s.value for s in samples)
        lines.append(f"   {family.name:<40} {len(samples):>4} series, total {total:,.0f}")
    probe = LagProbe(config, group, topics)
    try:
        console = Console(width=100, record=True, file=io.StringIO())
        console.print(render(probe.measure(), prefix))
    finally:
        probe.close()
    return "\n".join(lines) + "\n" + console.export_text()


def run(conversations: int, keep: bool, rate: float) -> int:
    settings = Settings()
    bootstrap = settings.bootstrap_servers
    # Every client logs through the project's logging, so a broker stopping before a client
    # closes does not print librdkafka's connection errors at the end of the demo.
    config = settings.confluent_config()
    # The worker decides in the registry's wire format when one is set; so do the demo's clients.
    registry = settings.registry()
    started_broker = False
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ and _sh(str(KAFKA), "status") != 0:
        if _sh(str(KAFKA), "up") != 0:
            return 1
        started_broker = True
    if not started_broker:
        # A given cluster that does not answer is one sentence, before anything is created.
        require_broker(config, settings.broker_wait_seconds)
    prefix = f"demo-{time.strftime('%Y%m%d%H%M%S')}."
    app_id = f"{prefix}worker"

    def topic(name: str) -> str:
        return f"{prefix}{name}"

    worker: subprocess.Popen[bytes] | None = None
    # The worker's state and its log go where ESCALATION_DATA_DIR says (default: data/).
    log_path = settings.data_dir / f"{prefix}worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        print(f"== topics (prefix {prefix})")
        definitions = {topic(n): d.renamed(topic(n)) for n, d in load_definitions().items()}
        print(format_reports(ensure_topics(config, definitions)))

        print("== worker")
        env = {
            **os.environ,
            "ESCALATION_BOOTSTRAP_SERVERS": bootstrap,
            "ESCALATION_TOPIC_PREFIX": prefix,
            "ESCALATION_APP_ID": app_id,
            "ESCALATION_DATA_DIR": str(settings.data_dir),
            "ESCALATION_WEB_PORT": str(settings.web_port),
        }
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "stream.worker"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        print(f"   pid {worker.pid}, log {log_path}")
        web = f"http://127.0.0.1:{settings.web_port}"
        print(f"   metrics {web}/metrics, readiness {web}/health/ready")
        print(f"   lag: ESCALATION_TOPIC_PREFIX={prefix} escalation lag --group {app_id} --watch")
        wait_until_consuming(config, app_id, topic("support.accounts"), registry=registry)

        print(f"== replaying {conversations} real airline conversations")
        source = settings.datasets_dir / CORPUS_PATH
        events = list(iter_events(source, ReplayConfig(conversations=conversations)))
        counts = Counter(kind for kind, _ in events)
        # Paced like live traffic by default; --rate 1000000 sends it as one backlog.
        produce(
            events,
            bootstrap,
            rate=rate,
            topic_for={kind: topic(name) for kind, name in EVENT_TOPICS.items()},
            encode=default_encoder(registry=registry),
            producer_config={k: v for k, v in config.items() if k != "bootstrap.servers"},
            total=len(events),
        )
        print(f"   produced {len(events)} events: {dict(counts)}")

        print("== waiting for the worker to fold everything")
        inputs = [topic(name) for name in INPUT_TOPICS]
        ends = _end_offsets(config, inputs)
        target = sum(ends.values())
        deadline = time.monotonic() + 240
        done = 0
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                print(f"worker exited with {worker.returncode}; see {log_path}", file=sys.stderr)
                return 1
            done = _committed(config, app_id, list(ends))
            print(f"\r   committed {done}/{target}", end="", flush=True)
            if done >= target:
                break
            time.sleep(2)
        print()
        if done < target:
            print(f"worker did not catch up within 240 s; see {log_path}", file=sys.stderr)
            return 1

        decisions = _read_all(
            config, topic("escalation.decisions"), "escalation.decisions", registry
        )
        handoffs = _read_all(config, topic("escalation.handoffs"), "escalation.handoffs", registry)
        # Dead letters are single-object Avro always: they must be readable with no registry.
        dead = _read_all(config, topic("support.deadletter"), "support.deadletter")
        by_action = Counter(d["action"] for d in decisions)
        by_trigger = Counter(h["trigger"] for d in decisions for h in d["triggers"])
        print("== summary")
        print(f"   events in:      {len(events)}  {dict(counts)}")
        print(f"   decisions:      {len(decisions)}  by action {dict(by_action)}")
        print(f"   by trigger:     {dict(by_trigger)}")
        print(
            f"   handoffs:       {len(handoffs)} ({sum(h['revision'] == 0 for h in handoffs)} new)"
        )
        print(f"   dead letters:   {len(dead)}")
        if handoffs:
            richest = max(
                (h for h in handoffs if h["revision"] == 0),
                key=lambda h: (len(h["reasons"]), len(h["prior_contacts"]), len(h["transcript"])),
            )
            print("== one handoff package")
            print(json.dumps(richest, indent=2, ensure_ascii=False))
        print(f"== operations: {web}/metrics (totals per metric) and the lag after the run")
        print(operations_summary(f"{web}/metrics", config, app_id, inputs, prefix))
        return 0
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if not keep:
            _delete_topics(config, prefix)
        if started_broker:
            _sh(str(KAFKA), "down")
        print("== stopped everything the demo started")


def _delete_topics(config: dict[str, Any], prefix: str) -> None:
    """Deletes the demo's topics; a cluster gone by now leaves them, with a note, not a trace."""
    try:
        admin = AdminClient(config)
        names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                future.result(timeout=60)
    except KafkaException as exc:
        print(f"   the topics {prefix}* were not deleted: {exc.args[0]}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=3000)
    parser.add_argument("--keep", action="store_true", help="keep the demo's topics")
    parser.add_argument("--rate", type=float, default=1500.0, help="events per second")
    args = parser.parse_args()
    try:
        code = run(args.conversations, args.keep, args.rate)
    except ValidationError as exc:
        code = fail(UsageError(settings_problem(exc)), sys.stderr)
    except EscalationError as exc:
        code = fail(exc, sys.stderr)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
