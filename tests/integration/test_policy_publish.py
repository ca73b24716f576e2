"""`escalation policy publish` on the real broker: the value diff against the policy in force, and
a policy that fails the configured suite is refused unless --skip-tests."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, KafkaError, TopicPartition
from typer.testing import CliRunner

from stream.cli import app
from stream.core.policy import DEFAULT_POLICY_PATH
from stream.serde import serde_for_topic
from tests.integration.kafka_helpers import BOOTSTRAP, Isolated, isolated_topics

pytestmark = pytest.mark.integration
runner = CliRunner()


# Each test gets topics of its own.
isolated = pytest.fixture(isolated_topics)


def published(isolated: Isolated) -> list[str]:
    """The versions on the policy topic, oldest first."""
    topic = isolated.topic("escalation.policy")
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"publish-test-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    versions: list[str] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    break
                continue
            versions.append(serde_for_topic("escalation.policy").decode(msg.value())["version"])
    finally:
        consumer.close()
    return versions


def test_publish_shows_the_diff_and_refuses_a_policy_that_fails_the_suite(
    isolated: Isolated, tmp_path: Path
) -> None:
    env = {"ESCALATION_BOOTSTRAP_SERVERS": BOOTSTRAP, "ESCALATION_TOPIC_PREFIX": isolated.prefix}
    raw = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    shipped = raw["version"]
    raw["version"] = "2026.01-generous-refunds"
    raw["boundaries"]["refund"]["limit"] = 10000
    broken = tmp_path / "generous.yaml"
    broken.write_text(yaml.safe_dump(raw, sort_keys=False))

    # Given the shipped policy, published through the gate: nothing changes, every case passes
    first = runner.invoke(app, ["policy", "publish", str(DEFAULT_POLICY_PATH)], env=env)
    assert first.exit_code == 0, first.output
    assert f"changes against policy {shipped} in force (the start-up policy file" in first.stdout
    assert "  (none)" in first.stdout
    assert "policy tests (" in first.stdout and " passed" in first.stdout
    assert published(isolated) == [shipped]

    # When a policy with a 10,000 refund limit is published, it is refused, naming the cases
    refused = runner.invoke(app, ["policy", "publish", str(broken)], env=env)
    assert refused.exit_code == 1, refused.output
    assert "boundaries.refund.limit: 100 → 10000" in refused.stdout
    assert f'version: "{shipped}" → "2026.01-generous-refunds"' in refused.stdout
    assert "FAIL refund just above the limit escalates with the boundary message" in refused.stdout
    assert "not published: 3 of" in refused.stderr
    assert published(isolated) == [shipped]

    # Unless the operator skips the tests on purpose
    forced = runner.invoke(app, ["policy", "publish", str(broken), "--skip-tests"], env=env)
    assert forced.exit_code == 0, forced.output
    assert "the policy test suite was skipped (--skip-tests)" in forced.stderr
    assert published(isolated) == [shipped, "2026.01-generous-refunds"]

    # Then the diff of the next publication is against what the workers now run, from the topic
    back = runner.invoke(app, ["policy", "publish", str(DEFAULT_POLICY_PATH), "--dry-run"], env=env)
    assert back.exit_code == 0, back.output
    assert f"in force ({isolated.topic('escalation.policy')} at offset 1)" in back.stdout
    assert "boundaries.refund.limit: 10000 → 100" in back.stdout
    assert f"dry run: policy {shipped} not published" in back.stdout
    assert published(isolated) == [shipped, "2026.01-generous-refunds"]


def test_publish_refuses_when_the_configured_suite_is_malformed(
    isolated: Isolated, tmp_path: Path
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "bad.yaml").write_text(
        "cases:\n  - name: x\n    turns: [{customer: hi}]\n    expect: {action: escalat}\n"
    )
    env = {
        "ESCALATION_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATION_TOPIC_PREFIX": isolated.prefix,
        "ESCALATION_POLICY_TESTS_PATH": str(suite),
    }
    result = runner.invoke(app, ["policy", "publish", str(DEFAULT_POLICY_PATH)], env=env)
    assert result.exit_code == 2, result.output
    assert f"{suite / 'bad.yaml'}:4: case 'x' (cases[0]): expect.action: 'escalat'" in result.stderr
    assert "not published: the policy test suite" in result.stderr
    assert published(isolated) == []
