"""Worker throughput, CPU, changelog writes and decision latency on replayed airline traffic.

`make bench` (python bench/worker_bench.py): one backlog on the broker of KAFKA_BOOTSTRAP_SERVERS
(and no other: every process it starts is given that broker under every name it reads), then
`--rounds` interleaved rounds of, each draining the same events under a fresh group:
  1. a bare confluent-kafka consume -> decode -> encode -> produce loop (the ceiling);
  2. a Faust agent that only forwards raw records, once per Faust driver (`--drivers`);
  3. the worker, one instance (aiokafka driver, the one it runs on);
  4. the worker, two instances in one group (aiokafka driver);
(the passthroughs write to topics of their own; each worker run gets a fresh copy of the
backlog, written once its workers are ready and their group is stable, so the rate is draining and
not joining, and its calibration agent sees only the decisions of that run)
medians over the rounds, ratios within the run, then the latency of a fresh worker fed at half
its median rate (produce time -> decision time; split at the broker's append of the input, and
for the slowest 1% into the worker's main thread on a CPU, waiting for one, and idle, from /proc
schedstat). Writes bench/results/worker.json. Not a test:
nothing here asserts a target, and the machine's load average is recorded beside the figures.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    KafkaError,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from stream.replay import CORPUS_PATH, ReplayConfig, iter_events
from stream.replay.kafka import produce
from stream.serde import serde_for_topic
from stream.settings import REPO_ROOT, Settings
from stream.topics import EVENT_TOPICS, INPUT_TOPICS, ensure_topics, load_definitions

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
SOURCE = Settings().datasets_dir / CORPUS_PATH
# Results and logs go to the checkout this script is run from; REPO_ROOT is the checkout Python
# imports `stream` from, which an editable install may place elsewhere.
RESULTS = Path(__file__).resolve().parent / "results" / "worker.json"
LOG_DIR = Path(__file__).resolve().parents[1] / "data" / "bench"
# Faust broker URL scheme of each driver the bench can try.
DRIVERS = {"aiokafka": "kafka", "confluent": "rdkafka"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def broker_env(**extra: str) -> dict[str, str]:
    """The environment of a process the bench starts: this broker under every name it reads.

    `ESCALATION_BOOTSTRAP_SERVERS` wins over `KAFKA_BOOTSTRAP_SERVERS` in the worker's settings,
    so an inherited one would send the worker to another cluster; both are set here.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESCALATION_")}
    env.update(KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP, ESCALATION_BOOTSTRAP_SERVERS=BOOTSTRAP, **extra)
    return env


# Where the passthroughs write. Their own topics: written to `escalation.decisions`, the forwarded
# input records reached the worker's calibration agent, which dead-lettered each one (awaiting
# each write) and made the worker look four times slower than it is. The broker does not create
# topics on first use, so they are made with the others.
PASSTHROUGH_TOPIC = "bench.passthrough"
FAUST_PASSTHROUGH_TOPIC = "bench.faust-passthrough"


def make_topics(prefix: str) -> None:
    defs = {prefix + n: d.renamed(prefix + n) for n, d in load_definitions().items()}
    decisions = load_definitions()["escalation.decisions"]
    for name in (PASSTHROUGH_TOPIC, FAUST_PASSTHROUGH_TOPIC):
        defs[prefix + name] = decisions.renamed(prefix + name)
    ensure_topics({"bootstrap.servers": BOOTSTRAP}, defs)


def backlog(events: list[tuple[str, dict[str, Any]]]) -> str:
    """A fresh set of topics holding `events`; its prefix (the passthroughs' backlog)."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    make_topics(prefix)
    produce(
        events,
        BOOTSTRAP,
        topic_for={k: prefix + n for k, n in EVENT_TOPICS.items()},
        total=len(events),
        progress=False,
    )
    return prefix


def drop_topics(prefix: str) -> None:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(prefix)]
    if names:
        for f in admin.delete_topics(names, operation_timeout=30).values():
            f.result(timeout=60)


def partitions_of(topics: list[str]) -> list[TopicPartition]:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "bench-meta"})
    try:
        out = []
        for topic in topics:
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                out.append(TopicPartition(topic, p))
        return out
    finally:
        consumer.close()


def input_partitions(prefix: str) -> list[TopicPartition]:
    return partitions_of([prefix + name for name in INPUT_TOPICS])


def committed(group: str, parts: list[TopicPartition]) -> int:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group})
    try:
        return committed_by(consumer, parts)
    finally:
        consumer.close()


def committed_by(consumer: Consumer, parts: list[TopicPartition]) -> int:
    """Records the consumer's group has committed on `parts`, asked through `consumer`."""
    return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))


def end_offsets(topic: str) -> int:
    """Records ever written to `topic` (sum of its partitions' end offsets), 0 if it is absent."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "bench-meta"})
    try:
        return end_offsets_by(consumer, topic)
    finally:
        consumer.close()


def end_offsets_by(consumer: Consumer, topic: str) -> int:
    """`end_offsets`, asked through a consumer already open (polled every few ms)."""
    metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return 0
    return sum(
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in metadata.partitions
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def schedstat(pid: int, tid: int | None = None) -> tuple[int, int]:
    """Nanoseconds a process (all its threads, or thread `tid`) ran on a CPU, and waited runnable
    for one (the kernel's /proc schedstat): the second is time lost to the machine's load."""
    paths = [Path(f"/proc/{pid}/task/{tid}/schedstat")] if tid else None
    if paths is None:
        paths = list(Path(f"/proc/{pid}/task").glob("*/schedstat"))
    ran = waited = 0
    for path in paths:
        try:
            fields = path.read_text().split()
        except OSError:  # a thread that ended meanwhile
            continue
        ran += int(fields[0])
        waited += int(fields[1])
    return ran, waited


class SchedSampler(threading.Thread):
    """Samples a worker's main thread scheduler counters every few milliseconds while it is fed.

    A decision that took long either waited inside the worker (for a fetch, a batch, the merge)
    or the worker was runnable and not given a CPU, which on a shared 2-core machine is what
    other processes cost it; the samples tell the two apart for any time window. All threads are
    read only at `mark` (a dozen files: reading them every few ms would cost the worker CPU).
    """

    def __init__(self, pid: int, every_s: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every_s = every_s
        self.samples: list[tuple[float, int, int]] = []  # (wall time, ran ns, waited ns)
        self.marks: list[tuple[float, int, int]] = []  # the same for all threads
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            self.samples.append((time.time(), *schedstat(self.pid, self.pid)))
            self._stopping.wait(self.every_s)

    def mark(self) -> None:
        self.marks.append((time.time(), *schedstat(self.pid)))

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)

    def between(self, start: float, end: float) -> tuple[float, float] | None:
        """Main thread's (on-CPU, runnable-waiting) milliseconds between two wall times."""
        times = [s[0] for s in self.samples]
        i, j = bisect_left(times, start), bisect_right(times, end) - 1
        if i >= len(self.samples) or j <= i:
            return None
        a, b = self.samples[i], self.samples[j]
        return (b[1] - a[1]) / 1e6, (b[2] - a[2]) / 1e6

    def shares(self) -> dict[str, float]:
        """Between the first two marks (the paced run), as shares of wall time."""
        if len(self.marks) < 2:
            return {}
        a, b = self.marks[0], self.marks[1]
        main = self.between(a[0], b[0])
        wall = b[0] - a[0]
        out = {
            "all_threads_on_cpu": round((b[1] - a[1]) / 1e9 / wall, 3),
            "all_threads_waiting_for_cpu": round((b[2] - a[2]) / 1e9 / wall, 3),
        }
        if main is not None:
            out["main_thread_on_cpu"] = round(main[0] / 1e3 / wall, 3)
            out["main_thread_waiting_for_cpu"] = round(main[1] / 1e3 / wall, 3)
        return out


def slowest_share(
    latencies: list[tuple[float, float, float]], sampler: SchedSampler, share: float = 0.01
) -> dict[str, Any]:
    """What the slowest `share` of decisions (latency s, sent at, decided at) were made of: the
    worker's main thread on a CPU, waiting for one, and neither (waiting for I/O or a timer)."""
    worst = sorted(latencies)[-max(1, int(len(latencies) * share)) :]
    parts = [(lat, sampler.between(sent, decided)) for lat, sent, decided in worst]
    known = [(lat, p) for lat, p in parts if p is not None]
    if not known:
        return {}
    n = len(known)
    mean_ms = sum(lat for lat, _ in known) / n * 1000
    on_cpu = sum(p[0] for _, p in known) / n
    waiting = sum(p[1] for _, p in known) / n
    return {
        "decisions": n,
        "mean_latency_ms": round(mean_ms, 1),
        "main_thread_on_cpu_ms": round(on_cpu, 1),
        "main_thread_waiting_for_cpu_ms": round(waiting, 1),
        "main_thread_idle_ms": round(max(mean_ms - on_cpu - waiting, 0.0), 1),
    }


def slowest_to_broker(
    timed: list[tuple[float, float, float]], sent: dict[str, float], appended: dict[str, float]
) -> float | None:
    """Of the slowest 1% of decisions, the mean time their input took to reach the broker."""
    by_sent = {at: event_id for event_id, at in sent.items()}
    worst = sorted(timed)[-max(1, len(timed) // 100) :]
    ways = [
        appended[by_sent[at]] - at
        for _, at, _ in worst
        if at in by_sent and by_sent[at] in appended
    ]
    return round(sum(ways) / len(ways) * 1000, 1) if ways else None


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
    out = prefix + PASSTHROUGH_TOPIC
    consumer.subscribe(list(serdes))
    seen = 0
    first = None
    cpu_start = time.process_time()
    deadline = time.monotonic() + timeout
    while seen < total and time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=1.0):
            if msg.error():
                continue
            if first is None:
                first = time.perf_counter()
                cpu_start = time.process_time()
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
    cpu = time.process_time() - cpu_start
    consumer.close()
    return {
        "events": seen,
        "seconds": round(elapsed, 2),
        "events_per_s": round(seen / elapsed, 1),
        "cpu_us_per_event": round(cpu / seen * 1e6, 1) if seen else None,
        "complete": seen >= total,
    }


def passthrough_under_test(prefix: str, total: int) -> dict[str, Any]:
    """The confluent passthrough on the CPUs of the systems under test (it runs in this
    process, and librdkafka's threads take the CPUs of the thread that starts them)."""
    with on_cpus_under_test():
        return passthrough(prefix, total)


def spawn(
    command: list[str], env: dict[str, str], log: Path, cwd: Path = REPO_ROOT
) -> subprocess.Popen[bytes]:
    cpus = PINNED[0]
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus.under_test))
    with log.open("wb") as fh:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=fh, stderr=fh, preexec_fn=pin)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def drain_rate(
    group: str,
    parts: list[TopicPartition],
    total: int,
    processes: list[subprocess.Popen[bytes]],
    log: Path,
    timeout: float,
    output: str,
    before: int = 0,
) -> dict[str, Any]:
    """Sustained rate and CPU: from the first output record to the last, so neither start-up
    nor commit timing counts.

    Commits trail the records they cover (the worker acks a record once its state is written,
    up to a second later, and Faust commits once a second): the first commit of a drain that
    lasts a few seconds can come when most of the backlog is already folded, and a rate from
    commits then says 22,000 events/s where the CPU says 5,000. Output records go out within
    the producer's linger of their input, so the time from the first on `output` to the last
    (polled every `POLL_S`) is the time the drain took; `before` is how many records `output`
    held before the run. Committed offsets still say when the drain is over and that it is
    complete.
    """
    deadline = time.monotonic() + timeout
    samples: list[tuple[float, int, float]] = []  # (time, output records, CPU seconds)
    done = 0
    meta = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group})
    try:
        while time.monotonic() < deadline and all(p.poll() is None for p in processes):
            now = time.perf_counter()
            samples.append(
                (now, end_offsets_by(meta, output), sum(cpu_seconds(p.pid) for p in processes))
            )
            done = committed_by(meta, parts)
            if done >= total:
                break
            time.sleep(POLL_S)
        final = end_offsets_by(meta, output)
    finally:
        meta.close()
    started = next((s for s in samples if s[1] > before), None)
    assert started is not None, f"no output on {output}; see {log}"
    # The first sample that saw every output record, or the last one taken.
    ended = next((s for s in samples if s[1] >= final), samples[-1])
    elapsed = ended[0] - started[0]
    cpu = ended[2] - started[2]
    return {
        "events": done,
        "seconds": round(elapsed, 2),
        "events_per_s": round(total / elapsed, 1) if elapsed > 0 else None,
        "cpu_us_per_event": round(cpu / total * 1e6, 1),
        "output_records": final - before,
        "complete": done >= total,
    }


#: How often `drain_rate` reads the output's end offsets: the rate's resolution at each end.
POLL_S = 0.05


def faust_ceiling(prefix: str, total: int, driver: str, timeout: float = 600) -> dict[str, Any]:
    """The same backlog through a Faust agent that only forwards raw records."""
    app_id = f"{prefix}faust-pass-{driver}-{uuid.uuid4().hex[:6]}"
    log = LOG_DIR / f"faust-passthrough-{driver}.log"
    env = broker_env(
        BENCH_PREFIX=prefix,
        BENCH_APP_ID=app_id,
        BENCH_SCHEME=DRIVERS[driver],
        BENCH_OUTPUT=prefix + FAUST_PASSTHROUGH_TOPIC,
    )
    command = [sys.executable, str(REPO_ROOT / "bench" / "faust_passthrough.py"), "worker"]
    # The passthroughs of every round write to one topic.
    before = end_offsets(prefix + FAUST_PASSTHROUGH_TOPIC)
    process = spawn([*command, "-l", "warn"], env, log)
    try:
        return drain_rate(
            app_id,
            input_partitions(prefix),
            total,
            [process],
            log,
            timeout,
            prefix + FAUST_PASSTHROUGH_TOPIC,
            before,
        )
    finally:
        stop(process)


def web_port(n: int) -> int:
    return 6100 + (os.getpid() + n) % 500


def worker_env(prefix: str, app_id: str, driver: str, n: int) -> dict[str, str]:
    return broker_env(
        ESCALATION_TOPIC_PREFIX=prefix,
        ESCALATION_APP_ID=app_id,
        ESCALATION_DATA_DIR=str(LOG_DIR / f"state-{app_id}-{n}"),
        ESCALATION_LOG_LEVEL="warning",
        ESCALATION_WEB_PORT=str(web_port(n)),
        **WORKER_SETTINGS,
    )


#: The checkout the worker runs from (`--worker-root`): another version of the worker, to pair
#: runs of two versions on one broker with the same bench.
WORKER_ROOT: list[Path] = [REPO_ROOT]
#: Settings given to every worker the bench starts (`--worker-env NAME=VALUE`), to pair settings.
WORKER_SETTINGS: dict[str, str] = {}
#: Where the latency run's worker writes its event-loop stretches (`--loop-trace`), else None.
LOOP_TRACE: list[Path | None] = [None]


@dataclass(frozen=True)
class Pinning:
    """The CPUs of what is measured and of the bench's own load (`--worker-cpus`).

    On a machine this small the broker, the bench's paced producer and the worker share two
    cores: every wake-up of the producer or the broker can preempt the worker and leave its
    caches cold. Pinned, what is measured (the worker, the Faust and confluent passthroughs)
    has its CPUs to itself, as it has when the broker and the producers run on other machines.
    The broker is pinned by whoever starts it (`KAFKA_CPUS=0 deploy/kafka/kafka.sh up`); its
    CPUs are recorded beside the figures.
    """

    under_test: frozenset[int]
    bench: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Pinning:
        allowed = os.sched_getaffinity(0)
        try:
            wanted = frozenset(int(c) for c in text.split(",") if c.strip())
        except ValueError:
            raise ValueError(
                f"--worker-cpus takes CPU numbers like 1 or 2,3, not {text!r}"
            ) from None
        if not wanted or not wanted < allowed:
            raise ValueError(
                f"--worker-cpus {text!r} must be some, not all, of the CPUs this process may use "
                f"({','.join(map(str, sorted(allowed)))}): the rest run the bench's own load"
            )
        return cls(wanted, frozenset(allowed - wanted))

    def record(self) -> dict[str, Any]:
        return {
            "systems_under_test": sorted(self.under_test),
            "bench": sorted(self.bench),
            "broker": broker_cpus(),
        }


#: `--worker-cpus`, else None (nothing pinned).
PINNED: list[Pinning | None] = [None]


def broker_cpus() -> list[str]:
    """The CPUs each local Kafka broker process may run on, as Linux lists them ("0", "0-1")."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if b"kafka.Kafka" not in (status.parent / "cmdline").read_bytes():
                continue
            for line in status.read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    found.append(line.split(":", 1)[1].strip())
        except OSError:
            continue
    return found


@contextmanager
def on_cpus_under_test() -> Iterator[None]:
    """Run the calling thread (and the threads it starts) where the systems under test run."""
    pinned = PINNED[0]
    if pinned is None:
        yield
        return
    os.sched_setaffinity(0, pinned.under_test)
    try:
        yield
    finally:
        os.sched_setaffinity(0, pinned.bench)


def start_worker(prefix: str, app_id: str, driver: str, n: int = 0) -> subprocess.Popen[bytes]:
    log = LOG_DIR / f"worker-{driver}-{n}.log"
    env = worker_env(prefix, app_id, driver, n)
    command = [sys.executable, "-m", "stream.worker"]
    if n == 99 and LOOP_TRACE[0] is not None:  # the latency run's worker
        env["BENCH_LOOP_TRACE"] = str(LOOP_TRACE[0])
        command = [sys.executable, str(Path(__file__).resolve().parent / "traced_worker.py")]
    # `-m` puts the working directory first on the path, so the worker is that checkout's.
    return spawn(command, env, log, cwd=WORKER_ROOT[0])


def workers(
    events: list[tuple[str, dict[str, Any]]], driver: str, count: int, timeout: float = 600
) -> dict[str, Any]:
    """`count` workers in one group draining the backlog; changelog records per input event.

    The workers start on empty topics and the backlog is written once every one of them is
    ready and the group has all of them: a backlog drains in seconds, and measured from a cold
    start, two workers' rate was mostly their group's joins and rebalances (0.31x one worker)."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    make_topics(prefix)
    try:
        return _workers(prefix, events, driver, count, timeout)
    finally:
        drop_topics(prefix)


def settled(group: str, count: int, processes: list[subprocess.Popen[bytes]]) -> bool:
    """Every worker answers ready and the group is stable with all of them."""
    for n, process in enumerate(processes):
        if process.poll() is not None:
            raise RuntimeError(f"worker {n} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{web_port(n)}/health/ready", timeout=5
            ) as answer:
                if answer.status != 200:
                    return False
        except (OSError, urllib.error.URLError):
            return False
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return bool(described.state == ConsumerGroupState.STABLE and len(described.members) == count)


def _workers(
    prefix: str, events: list[tuple[str, dict[str, Any]]], driver: str, count: int, timeout: float
) -> dict[str, Any]:
    app_id = f"{prefix}worker-{driver}-{count}-{uuid.uuid4().hex[:6]}"
    processes = [start_worker(prefix, app_id, driver, n) for n in range(count)]
    total = len(events)
    try:
        deadline = time.monotonic() + 180
        while not settled(app_id, count, processes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers not settled in 180 s")
            time.sleep(0.5)
        produce(
            events,
            BOOTSTRAP,
            topic_for={k: prefix + n for k, n in EVENT_TOPICS.items()},
            total=total,
            progress=False,
        )
        result = drain_rate(
            app_id,
            input_partitions(prefix),
            total,
            processes,
            LOG_DIR / f"worker-{driver}-0.log",
            timeout,
            prefix + "escalation.decisions",
        )
    finally:
        for process in processes:
            stop(process)
    changelog = end_offsets(f"{app_id}-customer-state-changelog")
    result["changelog_records"] = changelog
    result["changelog_records_per_event"] = round(changelog / total, 3)
    return result


def stamp_on_append(topics: list[str]) -> None:
    """Have the broker stamp records with their append time, so a decision's latency splits into
    the way to the broker (the bench's producer and the broker, on the same loaded machine) and
    the worker's part (broker append -> decision)."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    entry = ConfigEntry(
        "message.timestamp.type",
        "LogAppendTime",
        incremental_operation=AlterConfigOpType.SET,
    )
    resources = [ConfigResource("topic", t, incremental_configs=[entry]) for t in topics]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout=30)


def appended_at(prefix: str) -> dict[str, float]:
    """Event id -> the broker's append time (s) of every record on the input topics."""
    serdes = {prefix + name: serde_for_topic(name) for name in EVENT_TOPICS.values()}
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"lat-append-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
        }
    )
    parts = partitions_of(list(serdes))
    for tp in parts:
        tp.offset = OFFSET_BEGINNING
    consumer.assign(parts)
    out: dict[str, float] = {}
    ended = 0
    deadline = time.monotonic() + 60
    try:
        while ended < len(parts) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                error = msg.error()
                if error is not None:
                    ended += error.code() == KafkaError._PARTITION_EOF
                    continue
                record = serdes[msg.topic()].decode(msg.value())
                out[record["event_id"]] = msg.timestamp()[1] / 1000
    finally:
        consumer.close()
    return out


def percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[max(int(len(ordered) * share) - 1, 0)], 1) if ordered else None


def latency(events: list[tuple[str, dict[str, Any]]], rate: float, driver: str) -> dict[str, Any]:
    """Event produced -> its decision on the output topic, at a steady `rate`."""
    prefix = f"bench-lat-{uuid.uuid4().hex[:8]}."
    make_topics(prefix)
    stamp_on_append([prefix + name for name in EVENT_TOPICS.values()])
    app_id = f"{prefix}worker"
    process = start_worker(prefix, app_id, driver, 99)
    sent: dict[str, float] = {}
    result: dict[str, Any] = {}
    paced_from = paced_to = 0.0
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
        # (latency, sent at, decided at) of each decision, for what the slowest were made of
        timed: list[tuple[float, float, float]] = []
        decided_at: dict[str, float] = {}  # event id -> its first decision's time

        def collect(batch: list[Any]) -> None:
            for msg in batch:
                if not msg.error():
                    d = decision_serde.decode(msg.value())
                    if d["event_id"] in sent and d["event_id"] not in decided_at:
                        decided = msg.timestamp()[1] / 1000
                        decided_at[d["event_id"]] = decided
                        latencies.append(decided - sent[d["event_id"]])
                        timed.append((latencies[-1], sent[d["event_id"]], decided))

        interval = 1.0 / rate
        # The worker's CPU while it is fed at the rate: at a rate it cannot sustain on its share
        # of a loaded machine the latency is queueing, which this (CPU per event at this rate,
        # beside the backlog's) tells apart from waits in the worker.
        cpu_start, paced_start = cpu_seconds(process.pid), time.perf_counter()
        paced_from = time.time()
        load_start = os.getloadavg()[0]
        sampler = SchedSampler(process.pid)
        sampler.start()
        sampler.mark()
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
            collect(consumer.consume(100, timeout=0))
        paced_cpu = cpu_seconds(process.pid) - cpu_start
        paced_seconds = time.perf_counter() - paced_start
        paced_to = time.time()
        sampler.mark()
        producer.flush(30)
        # Until the last decisions are in: their windows need the samples too.
        expected = sum(
            1 for k, r in measured if k == "message" and r["role"] in ("customer", "ai_agent")
        )
        deadline = time.monotonic() + 60
        while len(latencies) < expected * 0.9 and time.monotonic() < deadline:
            collect(consumer.consume(500, timeout=0.5))
        consumer.close()
        sampler.stop()
        appended = appended_at(prefix)
        # (sent -> broker append, broker append -> decision) of each decision whose input was read
        split = {
            event_id: (appended[event_id] - at, decided_at[event_id] - appended[event_id])
            for event_id, at in sent.items()
            if event_id in appended and event_id in decided_at
        }
        latencies.sort()
        ms = [x * 1000 for x in latencies]
        result = {
            "driver": driver,
            "rate_events_per_s": round(rate, 1),
            "events": len(measured),
            "decisions_expected": expected,
            "decisions_measured": len(ms),
            "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 1) if ms else None,
            "max_ms": round(ms[-1], 1) if ms else None,
            "worker_cpu_us_per_event": round(paced_cpu / len(measured) * 1e6, 1),
            "worker_cpu_share_of_a_core": round(paced_cpu / paced_seconds, 3),
            "load_average": round(os.getloadavg()[0], 2),
            "load_average_at_start": round(load_start, 2),
            # Whether the worker got a CPU when it wanted one (shares of the paced run's wall time)
            "worker_scheduling": sampler.shares(),
            "slowest_1_percent": slowest_share(timed, sampler),
            # The same decisions split at the broker's append of their input record.
            "to_the_broker_p50_ms": percentile([a * 1000 for a, _ in split.values()], 0.5),
            "to_the_broker_p99_ms": percentile([a * 1000 for a, _ in split.values()], 0.99),
            "worker_part_p50_ms": percentile([w * 1000 for _, w in split.values()], 0.5),
            "worker_part_p99_ms": percentile([w * 1000 for _, w in split.values()], 0.99),
            "slowest_1_percent_to_the_broker_mean_ms": slowest_to_broker(timed, sent, appended),
        }
    finally:
        stop(process)
        drop_topics(prefix)
        if LOOP_TRACE[0] is not None and result:
            result["loop_stretches"] = loop_stretches(LOOP_TRACE[0], paced_from, paced_to)
            result["slowest_1_percent_by_callback"] = slowest_by_callback(LOOP_TRACE[0], timed)
    return result


def loop_stretches(path: Path, start: float, end: float) -> dict[str, Any]:
    """The paced window's longest stretches of the worker's event loop without an await
    (bench/traced_worker.py): each holds every decision whose record arrives meanwhile."""
    try:
        trace = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    paced = [s for s in trace["stretches"] if start <= s[0] <= end]
    paced.sort(key=lambda s: s[2], reverse=True)
    seconds = end - start
    by_name: dict[str, list[float]] = {}
    for _, _, cpu, name in paced:
        by_name.setdefault(name, []).append(cpu)
    return {
        "paced_seconds": round(seconds, 1),
        "longest_cpu_ms": [round(s[2] * 1000, 1) for s in paced[:10]],
        "longest": [
            {"cpu_ms": round(s[2] * 1000, 1), "wall_ms": round(s[1] * 1000, 1), "what": s[3]}
            for s in paced[:5]
        ],
        "over_10ms_cpu_per_s": round(sum(1 for s in paced if s[2] > 0.010) / seconds, 2),
        "over_20ms_cpu_per_s": round(sum(1 for s in paced if s[2] > 0.020) / seconds, 2),
        "by_callback_over_5ms": {
            name: {
                "count": sum(1 for c in cpus if c > 0.005),
                "max_cpu_ms": round(max(cpus) * 1000, 1),
            }
            for name, cpus in sorted(by_name.items(), key=lambda kv: -max(kv[1]))[:8]
            if max(cpus) > 0.005
        },
    }


def slowest_by_callback(
    path: Path, timed: list[tuple[float, float, float]], share: float = 0.01
) -> dict[str, Any]:
    """Whose work the slowest `share` of decisions waited behind: the main thread's CPU, in ms
    per slow decision, of each event-loop callback inside its window (sent -> decided), a
    callback cut by the window counted for the part inside. Callbacks shorter than the trace's
    `BENCH_LOOP_TRACE_MIN_MS` are not in it; set it low (0.05) for this."""
    try:
        trace = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    worst = sorted(timed)[-max(1, int(len(timed) * share)) :]
    if not worst:
        return {}
    stretches = sorted(trace["stretches"])
    starts = [s[0] for s in stretches]
    by_name: dict[str, float] = {}
    for _, sent, decided in worst:
        # Stretches are under a second long: look back that far from the window's start.
        for at, wall, cpu, name in stretches[bisect.bisect_left(starts, sent - 1.0) :]:
            if at >= decided:
                break
            inside = min(at + wall, decided) - max(at, sent)
            if inside > 0 and wall > 0:
                by_name[name] = by_name.get(name, 0.0) + cpu * inside / wall
    n = len(worst)
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1])
    return {
        "decisions": n,
        "mean_latency_ms": round(sum(w[0] for w in worst) / n * 1000, 1),
        "traced_cpu_ms": round(sum(by_name.values()) / n * 1000, 1),
        "cpu_ms_by_callback": {name: round(v / n * 1000, 2) for name, v in ranked[:15]},
    }


def median_of(rounds: list[dict[str, Any]], name: str, field: str = "events_per_s") -> Any:
    values = [r[name][field] for r in rounds if r.get(name) and r[name].get(field) is not None]
    return round(statistics.median(values), 3) if values else None


def ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 3) if a and b else None


def attempt(label: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One measurement; a driver that fails is recorded with its error, not fatal to the run."""
    try:
        result = run()
    except Exception as exc:  # a failing driver is a finding to record, not a crash
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(f"  {label}: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--drivers", default="aiokafka", help=f"comma-separated, of {', '.join(DRIVERS)}"
    )
    parser.add_argument("--no-pair", action="store_true", help="skip the two-worker run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results JSON to write")
    parser.add_argument(
        "--latency-only",
        type=float,
        metavar="RATE",
        help="only the latency run, fed at RATE events/s for --latency-seconds (no backlog runs)",
    )
    parser.add_argument(
        "--loop-trace",
        action="store_true",
        help="run the latency run's worker with its event-loop callbacks timed "
        "(bench/traced_worker.py) and report the longest stretches without an await",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every worker started (ESCALATION_...), to pair two settings",
    )
    parser.add_argument(
        "--worker-cpus",
        metavar="LIST",
        help="pin what is measured (workers, passthroughs) to these CPUs, e.g. 1, and the "
        "bench's own producers and consumers to the others; pin the broker with "
        "KAFKA_CPUS when starting it",
    )
    parser.add_argument(
        "--worker-root",
        type=Path,
        default=REPO_ROOT,
        help="the checkout to run the worker from (default: this one), to pair two versions",
    )
    args = parser.parse_args()
    WORKER_ROOT[0] = args.worker_root.resolve()
    for setting in args.worker_env:
        name, _, value = setting.partition("=")
        if not name.startswith("ESCALATION_") or not value:
            parser.error(f"--worker-env takes ESCALATION_NAME=VALUE, not {setting!r}")
        WORKER_SETTINGS[name] = value
    if args.worker_cpus is not None:
        try:
            PINNED[0] = Pinning.parse(args.worker_cpus)
        except ValueError as exc:
            parser.error(str(exc))
        # This thread, and every thread it starts from now on, runs the bench's own load.
        os.sched_setaffinity(0, PINNED[0].bench)
    if args.loop_trace:
        LOOP_TRACE[0] = LOG_DIR / f"loop-trace-{os.getpid()}.json"
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    unknown = [d for d in drivers if d not in DRIVERS]
    if unknown:
        parser.error(f"unknown driver {unknown[0]!r}; expected some of {', '.join(DRIVERS)}")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()

    events = list(iter_events(SOURCE, ReplayConfig(conversations=args.conversations)))
    total = len(events)
    if args.latency_only is not None:
        latency_only(args, events, load_before)
        return
    # The passthroughs share one backlog; each worker run gets a copy of its own (`workers`).
    prefix = backlog(events)
    rounds: list[dict[str, Any]] = []
    try:
        print(f"backlog: {total} events on {BOOTSTRAP}", flush=True)
        for number in range(args.rounds):
            print(f"round {number + 1}", flush=True)
            row: dict[str, Any] = {"load_average": os.getloadavg()[0]}
            row["confluent_passthrough"] = attempt(
                "confluent passthrough", lambda: passthrough_under_test(prefix, total)
            )
            for driver in drivers:
                # A driver that never commits is given up on after two minutes.
                row[f"faust_passthrough_{driver}"] = attempt(
                    f"faust passthrough ({driver})",
                    lambda d=driver: faust_ceiling(  # type: ignore[misc]
                        prefix, total, d, timeout=600 if d == "aiokafka" else 120
                    ),
                )
            # The worker runs on the default driver only (see docs/worker.md, Faust on librdkafka).
            row["worker_aiokafka"] = attempt(
                "worker (aiokafka)", lambda: workers(events, "aiokafka", 1)
            )
            if not args.no_pair:
                row["two_workers_aiokafka"] = attempt(
                    "two workers (aiokafka)", lambda: workers(events, "aiokafka", 2)
                )
            rounds.append(row)
    finally:
        drop_topics(prefix)

    medians: dict[str, Any] = {}
    for name in rounds[0]:
        if name == "load_average":
            continue
        medians[name] = {
            field: median_of(rounds, name, field)
            for field in ("events_per_s", "cpu_us_per_event", "changelog_records_per_event")
        }
    ceiling = medians["confluent_passthrough"]["events_per_s"]
    ratios: dict[str, Any] = {}
    worker = medians["worker_aiokafka"]["events_per_s"]
    ratios["worker_to_faust_passthrough_aiokafka"] = ratio(
        worker, medians.get("faust_passthrough_aiokafka", {}).get("events_per_s")
    )
    ratios["worker_aiokafka_to_confluent_passthrough"] = ratio(worker, ceiling)
    for driver in drivers:
        ratios[f"faust_passthrough_{driver}_to_confluent_passthrough"] = ratio(
            medians[f"faust_passthrough_{driver}"]["events_per_s"], ceiling
        )
    if not args.no_pair:
        ratios["two_workers_to_one_aiokafka"] = ratio(
            medians["two_workers_aiokafka"]["events_per_s"],
            medians["worker_aiokafka"]["events_per_s"],
        )
        # On 2 shared cores two workers cannot run twice as fast; what each event costs them is
        # the figure that says whether the second worker adds overhead (1.0: none).
        ratios["two_workers_cpu_per_event_to_one_aiokafka"] = ratio(
            medians["two_workers_aiokafka"]["cpu_us_per_event"],
            medians["worker_aiokafka"]["cpu_us_per_event"],
        )

    rate = (medians["worker_aiokafka"]["events_per_s"] or 200) / 2
    lat = latency_at(events, rate, args.latency_seconds)
    result = {
        **result_head(
            f"--conversations {args.conversations} --rounds {args.rounds} "
            f"--latency-seconds {args.latency_seconds} --drivers {','.join(drivers)}"
            f"{' --no-pair' if args.no_pair else ''}"
            f"{pinned_option()}"
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "note": "shared machine under load from other processes: compare ratios, not rates",
            "pinned": None if PINNED[0] is None else PINNED[0].record(),
        },
        "versions": {
            p: version(p)
            for p in ("faust-streaming", "aiokafka", "confluent-kafka", "fastavro", "rocksdict")
        },
        "input": {
            "source": "twcs-airlines/airlines_raw.csv.bz2 via stream.replay",
            "conversations": args.conversations,
            "events": total,
        },
        "rounds": rounds,
        "median": medians,
        "ratios": ratios,
        "latency_at_half_rate": lat,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({k: result[k] for k in ("median", "ratios", "latency_at_half_rate")}, indent=2)
    )


def latency_at(
    events: list[tuple[str, dict[str, Any]]], rate: float, seconds: float
) -> dict[str, Any]:
    """The latency run at `rate` over the first `seconds` worth of events (fewer if there are
    not that many)."""
    sample = events[: int(rate * seconds)]
    return attempt("latency (aiokafka)", lambda: latency(sample, rate, "aiokafka"))


def pinned_option() -> str:
    pinned = PINNED[0]
    return (
        "" if pinned is None else f" --worker-cpus {','.join(map(str, sorted(pinned.under_test)))}"
    )


def result_head(options: str) -> dict[str, str]:
    """A result's first fields: the command as it was run (`make bench` runs it with no
    option), then every option's value, and when."""
    return {
        "command": f"KAFKA_BOOTSTRAP_SERVERS={BOOTSTRAP} python {shlex.join(sys.argv)}",
        "options": options,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def latency_only(
    args: argparse.Namespace,
    events: list[tuple[str, dict[str, Any]]],
    load_before: tuple[float, float, float],
) -> None:
    """One latency run at a given rate: what paired runs of two versions compare."""
    rate = args.latency_only
    lat = latency_at(events, rate, args.latency_seconds)
    result = {
        **result_head(
            f"--latency-only {rate} --latency-seconds {args.latency_seconds} "
            f"--conversations {args.conversations} --worker-root {WORKER_ROOT[0]}"
            + "".join(f" --worker-env {k}={v}" for k, v in WORKER_SETTINGS.items())
            + (" --loop-trace" if LOOP_TRACE[0] is not None else "")
            + pinned_option()
        ),
        "pinned": None if PINNED[0] is None else PINNED[0].record(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "latency": lat,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
