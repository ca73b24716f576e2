"""Health endpoints of a real worker: ready once it can work, not live once it cannot heal."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stream.core.events import event_to_dict
from stream.testing import synthetic_events
from tests.integration.kafka_helpers import (
    BOOTSTRAP,
    Isolated,
    free_port,
    isolated_topics,
    produce,
    running_worker,
)

pytestmark = pytest.mark.integration


def status(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(url: str, code: int, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            got, body = status(url)
        except OSError as exc:  # not listening yet
            last = exc
        else:
            if got == code:
                return body
            last = (got, body)
        time.sleep(1)
    raise AssertionError(f"{url} never answered {code}; last {last}")


# Each test gets topics of its own.
isolated = pytest.fixture(isolated_topics)


def test_a_worker_is_live_then_ready_with_its_partitions_and_policy(
    isolated: Isolated, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_worker(
        isolated, tmp_path / "state", tmp_path / "w.log", {"ESCALATION_WEB_PORT": str(port)}
    ):
        assert wait_for(f"{base}/health/live", 200) == {"status": "live"}
        body = wait_for(f"{base}/health/ready", 200)
    assert body["status"] == "ready" and body["ready"] is True
    assert body["assigned_partitions"] == 20  # 5 input topics x 4 partitions, one worker
    assert body["recovery_finished"] is True and body["policy_loaded"] is True
    assert body["policy_version"]


def test_an_agent_that_crashes_on_every_restart_fails_liveness(
    isolated: Isolated, tmp_path: Path
) -> None:
    # Given the state table's changelog exists with the wrong partition count, so the customer
    # agent fails with PartitionsMismatch however often Faust restarts it
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    wrong = NewTopic(f"{isolated.app_id}-customer-state-changelog", 1, 1)
    admin.create_topics([wrong])[wrong.topic].result(timeout=60)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_worker(
        isolated, tmp_path / "state", tmp_path / "w.log", {"ESCALATION_WEB_PORT": str(port)}
    ):
        # When events arrive for it
        wait_for(f"{base}/health/live", 200, timeout=90)
        events = [(e.type, event_to_dict(e)) for e in synthetic_events(60, 30, seed=3)]
        produce(isolated, events)
        # Then the worker, live at first, answers 503 naming the crash loop
        body = wait_for(f"{base}/health/live", 503, timeout=150)
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            exported = response.read().decode()
    assert body["status"] == "crash_loop"
    assert "PartitionsMismatch" in str(body["last_crash"])
    crashes = [
        float(line.rsplit(" ", 1)[1])
        for line in exported.splitlines()
        if line.startswith("escalation_agent_crashes_total{")
    ]
    assert sum(crashes) >= 3
