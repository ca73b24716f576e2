"""The fault suite on a private broker (never the shared one): faults the worker must ride out,
each checked against the backtest of exactly what the worker consumed (DESIGN section 8).

- a broker outage under load;
- two workers in one group, one killed with SIGKILL mid-stream: the survivor takes its partitions
  with their state from the changelog;
- a customer who sends long emoji turns until the state is several times its byte budget;
- event times far in the future and far in the past.
The poison matrix (`test_poison_matrix.py`) and TLS (`test_security.py`) have files of their own.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from stream.backtest.run import run_policy
from stream.backtest.sources import KafkaSource, topics_with_prefix
from stream.core.policy import default_policy
from stream.testing import murmur2_partition
from stream.topics import load_definitions
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    assert_backtest_parity,
    changelog_values,
    journalled_worker,
    produce,
    running_worker,
    stop,
    wait_until_consuming,
)
from tests.integration.private_broker import PrivateBroker, running
from tests.integration.test_crash import conversation
from tests.integration.test_worker import DAY, T0, account, contact, message

pytestmark = pytest.mark.integration

CUSTOMERS = 12
OUTAGE_S = 20


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    with running(tmp_path_factory.mktemp("faults") / "broker") as broker:
        yield broker


def lines(path: Path) -> int:
    with path.open("rb") as log:
        return sum(1 for _ in log)


def test_a_broker_outage_under_load_loses_nothing_and_logs_little(
    private: PrivateBroker, tmp_path: Path
) -> None:
    isolated = Isolated(bootstrap=private.bootstrap())
    events = [account(f"c-crash-{n}", T0) for n in range(CUSTOMERS)] + [
        e for n in range(CUSTOMERS) for d in (0, 1) for e in conversation(n, d)
    ]
    messages = {r["event_id"] for kind, r in events if kind == "message"}
    decisions = Collector(isolated, "escalation.decisions")

    # Given a worker folding a stream of events
    with journalled_worker(isolated, tmp_path) as worker:
        feeding = threading.Thread(
            target=produce, args=(isolated, events, 0.02), kwargs={"through_outage": True}
        )
        feeding.start()
        decisions.wait_for(lambda rs: len(rs) >= 10)

        # When the broker stops for 20 s while records keep coming, then starts again
        before = lines(worker.log)
        private.stop()
        time.sleep(OUTAGE_S)
        during = lines(worker.log) - before
        private.start()
        feeding.join(timeout=300)

        # Then every message gets its decision, and the worker never stopped
        decisions.wait_for(lambda rs: {r["event_id"] for r in rs} >= messages, timeout=240)
        consumed = worker.consumed(len(events) + 1)
        decisions.drain(quiet=3.0)
        worker.assert_running()

    print(f"outage: {during} log lines in {OUTAGE_S} s")
    # And the outage wrote a bounded number of log lines, not one per reconnect attempt
    assert during < 600, f"{during} log lines in a {OUTAGE_S} s outage"
    # And the decisions are exactly the backtest's over what the worker consumed
    assert assert_backtest_parity(isolated, consumed, decisions.records) >= len(messages)
    decisions.close()
    isolated.delete()


def journal(path: Path) -> list[tuple[str, int, int]]:
    """A worker's consumption journal; a line cut short by SIGKILL is not a record."""
    lines = path.read_text().splitlines() if path.exists() else []
    fields = [line.split("\t") for line in lines]
    return [(f[0], int(f[1]), int(f[2])) for f in fields if len(f) == 3 and f[2].isdigit()]


def wait_for_members(isolated: Isolated, count: int, timeout: float = 180.0) -> None:
    """Block until the worker group is stable with `count` members (bounded)."""
    admin = AdminClient({"bootstrap.servers": isolated.bootstrap})
    deadline = time.monotonic() + timeout
    seen: Any = None
    while time.monotonic() < deadline:
        try:
            [future] = admin.describe_consumer_groups([isolated.app_id]).values()
            seen = future.result(timeout=10)
            if len(seen.members) == count and str(seen.state).endswith("STABLE"):
                return
        except Exception as exc:  # the coordinator of a new group may still be loading
            seen = exc
        time.sleep(1.0)
    raise AssertionError(f"group {isolated.app_id} not stable with {count} members: {seen}")


def test_two_workers_one_killed_the_survivor_carries_on_with_the_state(
    private: PrivateBroker, tmp_path: Path
) -> None:
    isolated = Isolated(bootstrap=private.bootstrap())
    customers = 16
    before = [account(f"c-crash-{n}", T0) for n in range(customers)] + [
        e for n in range(customers) for d in (0, 1) for e in conversation(n, d)
    ]
    after = [e for n in range(customers) for e in conversation(n, 2)]
    messages = {r["event_id"] for kind, r in before if kind == "message"}
    # Each customer's third contact on one issue escalates only if its first two survived
    thirds = {f"contact-c-crash-{n}-2" for n in range(customers)}
    decisions = Collector(isolated, "escalation.decisions")
    fast = {"ESCALATION_SESSION_TIMEOUT_SECONDS": "6"}
    journals = {name: tmp_path / f"{name}.tsv" for name in ("a", "b")}

    def env(name: str) -> dict[str, str]:
        return {**fast, "ESCALATION_JOURNAL_PATH": str(journals[name])}

    # Given two workers in one group, each with its own local store, sharing the partitions
    with (
        running_worker(isolated, tmp_path / "state-a", tmp_path / "a.log", env("a")) as a,
        running_worker(isolated, tmp_path / "state-b", tmp_path / "b.log", env("b")) as b,
    ):
        wait_for_members(isolated, 2)
        wait_until_consuming(isolated)
        feeding = threading.Thread(target=produce, args=(isolated, before, 0.02))
        feeding.start()
        # When one of them is killed with SIGKILL mid-stream
        decisions.wait_for(lambda rs: len(rs) >= len(messages) // 3, timeout=180)
        # (once it has folded messages of its own: a worker slow to recover may have none yet)
        deadline = time.monotonic() + 120
        while not any(t.endswith("messages") for t, _, _ in journal(journals["a"])):
            assert time.monotonic() < deadline, "the worker to kill folded no message in 120 s"
            time.sleep(0.2)
        stop(a, signal.SIGKILL)
        feeding.join(timeout=300)
        # All of it out before the third contacts, so none overtakes a customer's second
        assert not feeding.is_alive(), "the events before the kill were not all produced"
        owned_by_a = {(t, p) for t, p, _ in journal(journals["a"]) if t.endswith("messages")}
        # And the stream goes on, with each customer's third contact
        produce(isolated, after, pace=0.005)

        # Then the survivor decides every message, the killed worker's customers included
        try:
            decisions.wait_for(
                lambda rs: {r["event_id"] for r in rs} >= messages | thirds, timeout=200
            )
        except AssertionError:
            missing = sorted((messages | thirds) - {r["event_id"] for r in decisions.records})
            survivor_log = (tmp_path / "b.log").read_text()[-2000:]
            pytest.fail(
                f"{len(missing)} events have no decision: {missing[:20]}\n"
                f"survivor's log ends:\n{survivor_log}"
            )
        total = len(before) + len(after) + 1  # and the warm-up record
        deadline = time.monotonic() + 120
        while len(set(journal(journals["a"]) + journal(journals["b"]))) < total:
            assert time.monotonic() < deadline, "the journals do not cover every record"
            time.sleep(0.5)
        decisions.drain(quiet=3.0)
        assert b.poll() is None, (tmp_path / "b.log").read_text()[-3000:]

    # And it took over partitions the killed one owned, with their state: every third contact
    # escalates on repeat contact, which needs the two contacts folded before the kill
    taken = {(t, p) for t, p, _ in journal(journals["b"]) if t.endswith("messages")}
    assert owned_by_a, "the killed worker owned no partition of the messages"
    assert owned_by_a <= taken, (owned_by_a, taken)
    by_event = {r["event_id"]: r for r in decisions.records}
    assert all(by_event[e]["action"] == "escalate" for e in thirds)
    assert all(by_event[e]["triggers"][0]["trigger"] == "repeat_contact" for e in thirds)
    # And the decisions are the backtest's over what the two consumed, each partition in the
    # order its owners read it (the killed worker's part first)
    consumed = journal(journals["a"]) + journal(journals["b"])
    assert assert_backtest_parity(isolated, consumed, decisions.records) >= len(messages)
    decisions.close()
    isolated.delete()


EMOJI_TURN = "😡🧳💸🙁" * 500  # 2,000 characters (the policy's max_text_chars), 8,000 bytes
EMOJI_CONVERSATIONS = 20  # the policy's max_open_conversations
EMOJI_TURNS = 20  # its max_turns_per_conversation


def test_a_customer_at_the_policys_worst_case_in_emoji_does_not_stop_the_partition(
    private: PrivateBroker, tmp_path: Path
) -> None:
    isolated = Isolated(bootstrap=private.bootstrap())
    cid = "c-emoji"
    count = load_definitions()["support.messages"].partitions
    partition = murmur2_partition(cid.encode(), count)
    # A customer on the same partition, whose events come after the emoji customer's
    neighbour = next(
        c
        for c in (f"c-next-{n}" for n in range(200))
        if murmur2_partition(c.encode(), count) == partition
    )
    # Given a customer with 20 conversations of 20 turns of 2,000 emoji characters each
    # (3.2 MB of text, twelve times the state's byte budget)
    events = [account(cid, T0)]
    for c in range(EMOJI_CONVERSATIONS):
        conv, t = f"v-emoji-{c}", T0 + c * 60_000
        events.append(contact(cid, c, t, f"billing:E{c}", conv))
        events += [
            message(cid, conv, n, t + n * 1000 + 1, "customer", EMOJI_TURN)
            for n in range(EMOJI_TURNS)
        ]
    # And then an ordinary customer on the same partition
    events += [
        account(neighbour, T0),
        contact(neighbour, 0, T0 + DAY, "baggage:L1", "v-next"),
        message(neighbour, "v-next", 1, T0 + DAY + 1, "customer", "Where is my bag?"),
    ]
    decisions = Collector(isolated, "escalation.decisions")
    # When the worker folds them from the real broker
    with journalled_worker(isolated, tmp_path) as worker:
        produce(isolated, events)
        # Then the partition moves on: the next customer's message is decided
        decisions.wait_for(lambda rs: any(r["customer_id"] == neighbour for r in rs), timeout=300)
        consumed = worker.consumed(len(events) + 1)
        decisions.drain(quiet=3.0)
        worker.assert_running()

    # And every state written to the changelog fits the byte budget (the broker took them all)
    budget = default_policy().state.max_state_bytes
    sizes = [len(v) for v in changelog_values(isolated, cid) if v is not None]
    assert sizes and max(sizes) <= budget, (len(sizes), max(sizes, default=0))
    print(f"emoji customer: {len(sizes)} changelog records, largest {max(sizes)} B of {budget}")
    assert "state_trimmed" in worker.log.read_text(errors="replace")
    assert "MessageSizeTooLarge" not in worker.log.read_text(errors="replace")
    # And the decisions are the backtest's over what the worker consumed
    assert assert_backtest_parity(isolated, consumed, decisions.records) >= 2
    decisions.close()
    isolated.delete()


YEAR_9999 = 253_402_214_400_000


def test_future_and_past_event_times_are_dead_lettered_and_the_backtest_agrees(
    private: PrivateBroker, tmp_path: Path
) -> None:
    isolated = Isolated(bootstrap=private.bootstrap())
    started = int(time.time() * 1000) - 60_000
    cid = "c-time"
    # Given two contacts on one issue, one dated in the year 9999, one from 1970, then the third
    events = [
        account(cid, T0),
        message(cid, "v-1", 1, T0, "customer", "My invoice is wrong"),
        contact(cid, 1, T0, "billing:inv-7", "v-1"),
        contact(cid, 2, T0 + DAY, "billing:inv-7", "v-2"),
        contact(cid, 3, YEAR_9999, "billing:inv-7", "v-3"),
        contact(cid, 4, 1_000, "billing:inv-7", "v-4"),
        message(cid, "v-5", 1, T0 + 2 * DAY, "customer", "Still wrong"),
        contact(cid, 5, T0 + 2 * DAY + 1, "billing:inv-7", "v-5"),
    ]
    dead = Collector(isolated, "support.deadletter")
    decisions = Collector(isolated, "escalation.decisions")
    # When the live worker reads them
    with journalled_worker(isolated, tmp_path) as worker:
        produce(isolated, events, pace=0.05)
        try:
            letters = dead.wait_for(lambda rs: len(rs) >= 2, timeout=240)
            live = decisions.wait_for(
                lambda rs: any(
                    r["conversation_id"] == "v-5" and r["action"] == "escalate" for r in rs
                ),
                timeout=240,
            )
        except AssertionError:
            process = worker.process
            alive = "running" if process.poll() is None else f"exited {process.returncode}"
            raise AssertionError(f"worker {alive}: {worker.log.read_text()[-3000:]}") from None
        decisions.drain(quiet=3.0)
    # Then both bad times are dead letters naming the bound, and the third contact escalates
    assert sorted(r["error_type"] for r in letters) == ["event_time", "event_time"]
    reasons = sorted(r["reason"] for r in letters)
    assert "ahead of the record timestamp" in reasons[1] and "9999-12-31" in reasons[1]
    assert "behind the stream's watermark" in reasons[0] and "1970-01-01" in reasons[0]
    (escalation,) = [r for r in live if r["action"] == "escalate"]
    assert escalation["triggers"][0]["trigger"] == "repeat_contact"

    # And the backtest of the same records refuses the same two and decides the same
    source = KafkaSource(
        {"bootstrap.servers": isolated.bootstrap},
        started,
        int(time.time() * 1000) + 60_000,
        topics=topics_with_prefix(isolated.prefix),
        idle_timeout_s=30,
        warn=None,
    )
    replayed = run_policy(source, default_policy())
    assert source.refused_count == 2
    assert sorted(r.reason for r in source.refused) == reasons
    key = lambda r: r["decision_id"]  # noqa: E731
    assert sorted(live, key=key) == sorted((d.to_record() for d in replayed.decisions), key=key)
    dead.close()
    decisions.close()
    isolated.delete()
