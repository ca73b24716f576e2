"""Worker throughput and decision latency on replayed airline traffic, against a bare passthrough.

One run on the local broker, so the ratio worker/passthrough is measured under the same load:
  1. passthrough: a confluent-kafka consume -> decode -> encode -> produce loop over the backlog;
  2. worker: one Faust worker draining the same backlog (sustained events/s from committed offsets);
  3. latency: a fresh worker fed at about half its sustained rate, produce time -> decision time.
Writes bench/results/worker.json. Not a test: nothing here asserts a target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from stream.replay import CORPUS_PATH, ReplayConfig, iter_events
from stream.replay.kafka import produce
from stream.serde import serde_for_topic
from stream.settings import REPO_ROOT, Settings
from stream.topics import EVENT_TOPICS, INPUT_TOPICS, ensure_topics, load_definitions

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
SOURCE = Settings().datasets_dir / CORPUS_PATH
RESULTS = REPO_ROOT / "bench" / "results" / "worker.json"


def make_topics(prefix: str) -> None:
    defs = {prefix + n: d.renamed(prefix + n) for n, d in load_definitions().items()}
    ensure_topics({"bootstrap.servers": BOOTSTRAP}, defs)


def drop_topics(prefix: str) -> None:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix)]
    if names:
        for f in admin.delete_topics(names, operation_timeout=30).values():
            f.result(timeout=60)


def input_partitions(prefix: str) -> list[TopicPartition]:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "bench-meta"})
    try:
        out = []
        for name in INPUT_TOPICS:
            topic = prefix + name
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                out.append(TopicPartition(topic, p))
        return out
    finally:
        consumer.close()


def committed(group: str, parts: list[TopicPartition]) -> int:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group})
    try:
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def passthrough(prefix: str, total: int, timeout: float = 300) -> dict[str, Any]:
    """The ceiling: what one Python process moves through Kafka with the same serde, no logic."""
    serdes = {prefix + name: serde_for_topic(name) for name in INPUT_TOPICS}
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"bench-pass-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5})
    out = prefix + "escalation.decisions"
    consumer.subscribe(list(serdes))
    seen = 0
    first = None
    deadline = time.monotonic() + timeout
    while seen < total and time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=1.0):
            if msg.error():
                continue
            if first is None:
                first = time.perf_counter()
            serde = serdes[msg.topic()]
            record = serde.decode(msg.value())
            while True:
                try:
                    producer.produce(out, key=msg.key(), value=serde.encode(record))
                    break
                except BufferError:
                    producer.poll(0.05)
            seen += 1
        producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return {"events": seen, "seconds": round(elapsed, 2), "events_per_s": round(seen / elapsed, 1)}


def faust_ceiling(prefix: str, total: int, log: Path, timeout: float = 600) -> dict[str, Any]:
    """The same backlog through a Faust agent that only forwards raw records."""
    app_id = f"{prefix}faust-passthrough"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "BENCH_PREFIX": prefix,
        "BENCH_APP_ID": app_id,
    }
    with log.open("wb") as fh:
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO_ROOT / "bench" / "faust_passthrough.py"),
                "worker",
                "-l",
                "warn",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=fh,
            stderr=fh,
        )
    try:
        return drain_rate(app_id, input_partitions(prefix), total, process, log, timeout)
    finally:
        stop_worker(process)


def drain_rate(
    group: str,
    parts: list[TopicPartition],
    total: int,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float,
) -> dict[str, Any]:
    """Sustained rate: from the first commit to the last, so start-up and rebalance don't count."""
    deadline = time.monotonic() + timeout
    first_at = first_count = None
    done = 0
    while time.monotonic() < deadline and process.poll() is None:
        done = committed(group, parts)
        now = time.perf_counter()
        if done and first_at is None:
            first_at, first_count = now, done
        if done >= total:
            break
        time.sleep(0.5)
    assert first_at is not None and first_count is not None, f"no progress; see {log}"
    elapsed = time.perf_counter() - first_at
    moved = done - first_count
    return {
        "events": done,
        "measured_events": moved,
        "seconds": round(elapsed, 2),
        "events_per_s": round(moved / elapsed, 1) if elapsed > 0 else None,
        "complete": done >= total,
    }


def start_worker(prefix: str, app_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATION_TOPIC_PREFIX": prefix,
        "ESCALATION_APP_ID": app_id,
        "ESCALATION_DATA_DIR": str(REPO_ROOT / "data" / "bench"),
        "ESCALATION_LOG_LEVEL": "warning",
        "ESCALATION_WEB_PORT": str(6100 + os.getpid() % 500),
    }
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "stream.worker"], cwd=REPO_ROOT, env=env, stdout=fh, stderr=fh
        )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def worker_throughput(prefix: str, total: int, log: Path, timeout: float = 600) -> dict[str, Any]:
    app_id = f"{prefix}worker"
    process = start_worker(prefix, app_id, log)
    try:
        return drain_rate(app_id, input_partitions(prefix), total, process, log, timeout)
    finally:
        stop_worker(process)


def latency(events: list[tuple[str, dict[str, Any]]], rate: float, log: Path) -> dict[str, Any]:
    """Event produced -> its decision on the output topic, at a steady `rate`."""
    prefix = f"bench-lat-{uuid.uuid4().hex[:8]}."
    make_topics(prefix)
    app_id = f"{prefix}worker"
    process = start_worker(prefix, app_id, log)
    sent: dict[str, float] = {}
    try:
        # Warm-up: wait until the worker answers, so start-up is not counted as latency.
        warm = [e for e in events if e[0] != "message"][:50]
        produce(
            warm,
            BOOTSTRAP,
            topic_for={k: prefix + n for k, n in EVENT_TOPICS.items()},
            progress=False,
        )
        parts = input_partitions(prefix)
        deadline = time.monotonic() + 120
        while committed(app_id, parts) < len(warm) and time.monotonic() < deadline:
            time.sleep(0.5)
        measured = events[len(warm) :]
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})
        consumer = Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": f"lat-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([prefix + "escalation.decisions"])
        serdes = {k: serde_for_topic(n) for k, n in EVENT_TOPICS.items()}
        decision_serde = serde_for_topic("escalation.decisions")
        latencies: list[float] = []
        interval = 1.0 / rate
        next_at = time.perf_counter()
        for kind, record in measured:
            now = time.perf_counter()
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
            sent[record["event_id"]] = time.time()
            producer.produce(
                prefix + EVENT_TOPICS[kind],
                key=record["customer_id"].encode(),
                value=serdes[kind].encode(record),
            )
            producer.poll(0)
            for msg in consumer.consume(100, timeout=0):
                if not msg.error():
                    d = decision_serde.decode(msg.value())
                    if d["event_id"] in sent:
                        latencies.append(msg.timestamp()[1] / 1000 - sent[d["event_id"]])
        producer.flush(30)
        expected = sum(
            1 for k, r in measured if k == "message" and r["role"] in ("customer", "ai_agent")
        )
        deadline = time.monotonic() + 60
        while len(latencies) < expected * 0.9 and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if not msg.error():
                    d = decision_serde.decode(msg.value())
                    if d["event_id"] in sent:
                        latencies.append(msg.timestamp()[1] / 1000 - sent[d["event_id"]])
        consumer.close()
        latencies.sort()
        ms = [x * 1000 for x in latencies]
        return {
            "rate_events_per_s": round(rate, 1),
            "events": len(measured),
            "decisions_measured": len(ms),
            "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 1) if ms else None,
            "max_ms": round(ms[-1], 1) if ms else None,
        }
    finally:
        stop_worker(process)
        drop_topics(prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=6000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    args = parser.parse_args()
    log_dir = REPO_ROOT / "data" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)

    events = list(iter_events(SOURCE, ReplayConfig(conversations=args.conversations)))
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    make_topics(prefix)
    try:
        produce(
            events,
            BOOTSTRAP,
            topic_for={k: prefix + n for k, n in EVENT_TOPICS.items()},
            total=len(events),
        )
        print(f"backlog: {len(events)} events", flush=True)
        ceiling = passthrough(prefix, len(events))
        print(f"passthrough: {ceiling}", flush=True)
        framework = faust_ceiling(prefix, len(events), log_dir / "faust-passthrough.log")
        print(f"faust passthrough: {framework}", flush=True)
        worker = worker_throughput(prefix, len(events), log_dir / "throughput-worker.log")
        print(f"worker: {worker}", flush=True)
    finally:
        drop_topics(prefix)
    rate = (worker["events_per_s"] or 100) / 2
    sample = events[: int(rate * args.latency_seconds)]
    lat = latency(sample, rate, log_dir / "latency-worker.log")
    print(f"latency: {lat}", flush=True)
    result = {
        "command": "make bench  (python bench/worker_bench.py --conversations "
        f"{args.conversations} --latency-seconds {args.latency_seconds})",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {
            p: version(p)
            for p in ("faust-streaming", "aiokafka", "confluent-kafka", "fastavro", "rocksdict")
        },
        "input": {
            "source": "twcs-airlines/airlines_raw.csv.bz2 via stream.replay",
            "conversations": args.conversations,
            "events": len(events),
        },
        "passthrough": ceiling,
        "faust_passthrough": framework,
        "worker": worker,
        "ratio_worker_to_passthrough": round(worker["events_per_s"] / ceiling["events_per_s"], 3)
        if worker["events_per_s"]
        else None,
        "ratio_worker_to_faust_passthrough": round(
            worker["events_per_s"] / framework["events_per_s"], 3
        )
        if worker["events_per_s"] and framework["events_per_s"]
        else None,
        "latency_at_half_rate": lat,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
