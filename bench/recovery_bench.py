"""Worker RSS with 100k and 1M customers in its RocksDB table, and recovery time from the changelog.

Usage (a private broker, never the shared one; the bench creates and deletes its own topics):

    KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093 KAFKA_DATA_DIR=/tmp/kafka-bench \\
        deploy/kafka/kafka.sh up
    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092 .venv/bin/python bench/recovery_bench.py \\
        --customers 0,100000,1000000
    KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093 KAFKA_DATA_DIR=/tmp/kafka-bench \\
        deploy/kafka/kafka.sh down

For each customer count N, on fresh topics:
1. the customer-state changelog is filled with N customers' states, as the worker writes them
   (statecodec bytes under the byte budget, on the customer's partition). The states are those
   the backtest's fold leaves after the first `--conversations` real airline conversations
   (stream.replay), so mostly idle customers; each synthetic customer copies one of them under
   its own id. Going through the worker's input topics instead would fold the same states, at
   hours per million customers on this machine.
2. a worker starts with an empty local RocksDB directory: the time from its start to
   `/health/ready` answering 200 is the recovery time (the whole changelog read into RocksDB).
   Its RSS (VmRSS) is sampled at ready and after `--settle` seconds; its peak (VmHWM) too.
3. the worker is stopped and its RocksDB files are opened read-only: the number of keys must
   be N (a check that the states were really recovered, not skipped).
N = 0 is the baseline: the same worker with an empty table. Writes bench/results/recovery.json.
Not a test: nothing here asserts a target; the load average is recorded beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # noqa: E402

from stream.backtest.run import run_policy  # noqa: E402
from stream.core import statecodec  # noqa: E402
from stream.core.events import event_from_dict  # noqa: E402
from stream.core.policy import default_policy  # noqa: E402
from stream.replay import CORPUS_PATH, ReplayConfig, iter_events  # noqa: E402
from stream.settings import REPO_ROOT, Settings  # noqa: E402
from stream.testing import murmur2_partition  # noqa: E402
from stream.topics import ensure_topics, load_definitions  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
# Beside this script, in the checkout it is run from, not the one Python imports `stream` from.
RESULTS = Path(__file__).resolve().parent / "results" / "recovery.json"
STATE_TABLE = "customer-state"


def templates(conversations: int) -> list[bytes]:
    """Stored states of real customers after a replay, each with a placeholder id to replace."""
    policy = default_policy()
    source = Settings().datasets_dir / CORPUS_PATH
    events = [
        event_from_dict(kind, record)
        for kind, record in iter_events(source, ReplayConfig(conversations=conversations))
    ]
    result = run_policy(events, policy, keep=False)
    out = []
    for n, state in enumerate(result.states.values()):
        state.customer_id = f"TEMPLATE-{n:06d}"
        stored, _ = statecodec.encode(state, policy.state.max_state_bytes)
        assert f'"customer_id":"{state.customer_id}"'.encode() in stored
        out.append(stored)
    return out


def customer_id(n: int) -> str:
    return f"c-{n:07d}"


def fill_changelog(topic: str, customers: int, states: list[bytes], partitions: int) -> int:
    """Writes one state per customer, as the worker's table would; returns the bytes written."""
    producer = Producer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )
    total = 0
    for n in range(customers):
        cid = customer_id(n)
        template = states[n % len(states)]
        placeholder = f'"customer_id":"TEMPLATE-{n % len(states):06d}"'.encode()
        value = template.replace(placeholder, f'"customer_id":"{cid}"'.encode(), 1)
        total += len(value)
        while True:
            try:
                # Faust writes the table's str keys through its JSON serializer: quoted.
                producer.produce(
                    topic,
                    key=json.dumps(cid).encode(),
                    value=value,
                    partition=murmur2_partition(cid.encode(), partitions),
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(600) == 0
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def count_keys(data_dir: Path) -> int:
    """Keys in every RocksDB partition store of the state table, opened read-only."""
    from rocksdict import AccessType, Rdict

    total = 0
    for db in sorted(data_dir.rglob(f"{STATE_TABLE}-*.db")):
        store = Rdict(str(db), access_type=AccessType.read_only())
        try:
            # Besides the customers, each partition store keeps Faust's changelog offset.
            for key in store.keys():  # noqa: SIM118 (an Rdict, not a dict)
                raw = key if isinstance(key, bytes) else str(key).encode()
                total += raw.startswith(b'"c-')
        finally:
            store.close()
    return total


def run(customers: int, states: list[bytes], settle: float, timeout: float) -> dict[str, Any]:
    prefix = f"bench-rec-{uuid.uuid4().hex[:8]}."
    app_id = f"{prefix}worker"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    definitions = {prefix + n: d.renamed(prefix + n) for n, d in load_definitions().items()}
    ensure_topics({"bootstrap.servers": BOOTSTRAP}, definitions)
    partitions = load_definitions()["support.messages"].partitions
    changelog = f"{app_id}-{STATE_TABLE}-changelog"
    config = {"cleanup.policy": "compact"}
    admin.create_topics([NewTopic(changelog, partitions, 1, config=config)])[changelog].result(60)
    data = Path(tempfile.mkdtemp(prefix="recovery-bench-"))
    try:
        started = time.monotonic()
        written = fill_changelog(changelog, customers, states, partitions)
        produce_s = time.monotonic() - started
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESCALATION_")}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
            ESCALATION_BOOTSTRAP_SERVERS=BOOTSTRAP,
            ESCALATION_TOPIC_PREFIX=prefix,
            ESCALATION_APP_ID=app_id,
            ESCALATION_DATA_DIR=str(data),
            ESCALATION_WEB_PORT=str(port),
        )
        log = (data / "worker.log").open("wb")
        t0 = time.monotonic()
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream.worker"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
        )
        try:
            deadline = t0 + timeout
            while not ready(port):
                if worker.poll() is not None:
                    raise RuntimeError(f"worker exited {worker.returncode}; see {log.name}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker not ready within {timeout} s; see {log.name}")
                time.sleep(0.5)
            ready_s = time.monotonic() - t0
            at_ready = memory(worker.pid)
            time.sleep(settle)
            settled = memory(worker.pid)
        finally:
            worker.terminate()
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)
            log.close()
        recovered = count_keys(data)
        return {
            "customers": customers,
            "changelog_records": customers,
            "state_bytes_total": written,
            "state_bytes_mean": round(written / customers, 1) if customers else 0,
            "fill_changelog_s": round(produce_s, 1),
            "start_to_ready_s": round(ready_s, 1),
            "rss_at_ready_mb": round(at_ready["VmRSS"] / 2**20, 1),
            "rss_after_settle_mb": round(settled["VmRSS"] / 2**20, 1),
            "rss_peak_mb": round(settled["VmHWM"] / 2**20, 1),
            "recovered_keys": recovered,
            "rocksdb_dir_mb": round(
                sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) / 2**20, 1
            ),
            "load_average_after": os.getloadavg(),
        }
    finally:
        shutil.rmtree(data, ignore_errors=True)
        names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=60).values():
                future.result(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", default="0,100000,1000000")
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if BOOTSTRAP.endswith(":9092"):
        sys.exit("run this on a private broker (see the module docstring), not the shared one")
    load_before = os.getloadavg()
    states = templates(args.conversations)
    runs = []
    for customers in (int(n) for n in args.customers.split(",")):
        result = run(customers, states, args.settle, args.timeout)
        print(json.dumps(result), flush=True)
        assert result["recovered_keys"] == customers, result
        runs.append(result)
    report = {
        "command": "python bench/recovery_bench.py --customers " + args.customers,
        "template_customers": len(states),
        "template_conversations": args.conversations,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": load_before,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
