"""The worker refuses to start on topics that are missing or differ from their definitions."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from tests.integration.kafka_helpers import (
    BOOTSTRAP,
    REPO,
    Isolated,
    broker_available,
    set_topic_config,
)

pytestmark = pytest.mark.integration


def start_worker(prefix: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATION_TOPIC_PREFIX": prefix,
        "ESCALATION_APP_ID": f"{prefix}worker",
        "ESCALATION_DATA_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "stream.worker"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _broker() -> None:
    if not broker_available():
        pytest.skip("no Kafka broker; start one with deploy/kafka/kafka.sh up")


def test_no_topics_no_start(tmp_path: Path) -> None:
    prefix = f"it-t{uuid.uuid4().hex[:10]}."
    done = start_worker(prefix, tmp_path)
    assert done.returncode == 1
    assert "escalation topics" in done.stderr
    assert f"{prefix}support.accounts: drift: does not exist" in done.stderr
    # And nothing was created behind the operator's back
    names = AdminClient({"bootstrap.servers": BOOTSTRAP}).list_topics(timeout=10).topics
    assert not [n for n in names if n.startswith(prefix)]


def test_an_accounts_topic_that_is_not_compacted_is_refused(tmp_path: Path) -> None:
    # Given every topic as defined, except that accounts is not compacted
    isolated = Isolated()
    prefix = isolated.prefix
    accounts = isolated.topic("support.accounts")
    set_topic_config(accounts, cleanup_policy="delete")
    try:
        done = start_worker(prefix, tmp_path)
        assert done.returncode == 1
        assert f"{accounts}: drift: cleanup.policy is delete, defined compact" in done.stderr
        assert "escalation topics" in done.stderr
    finally:
        isolated.delete()
