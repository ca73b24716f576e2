"""TLS and SASL_SSL (SCRAM) end to end on a private broker that demands client certificates:
the topics commands, the worker (Faust/aiokafka), its policy feed, and the confluent clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from stream.security import client_security
from stream.serde import serde_for_topic
from stream.settings import Settings
from stream.worker import readiness
from tests.integration.kafka_helpers import REPO, free_port, stop
from tests.integration.private_broker import (
    SCRAM_PASSWORD,
    SCRAM_USER,
    Certificates,
    PrivateBroker,
    make_certificates,
    running,
)
from tests.integration.test_worker import T0, account, message

pytestmark = pytest.mark.integration
ESCALATION = [sys.executable, "-c", "from stream.cli import app; app()"]


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    base = tmp_path_factory.mktemp("tls")
    with running(base / "broker", make_certificates(base / "certs")) as broker:
        yield broker


def tls_env(certs: Certificates) -> dict[str, str]:
    return {
        "ESCALATION_SSL_CAFILE": str(certs.ca),
        "ESCALATION_SSL_CERTFILE": str(certs.client_cert),
        "ESCALATION_SSL_KEYFILE": str(certs.client_key),
    }


def environment(broker: PrivateBroker, protocol: str, prefix: str) -> dict[str, str]:
    assert broker.certificates is not None
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ESCALATION_") and key != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap(protocol),
            "ESCALATION_SECURITY_PROTOCOL": protocol,
            "ESCALATION_TOPIC_PREFIX": prefix,
            "ESCALATION_APP_ID": f"{prefix}worker",
            **tls_env(broker.certificates),
        }
    )
    if protocol == "SASL_SSL":
        env.update(
            {
                "ESCALATION_SASL_MECHANISM": "SCRAM-SHA-512",
                "ESCALATION_SASL_USERNAME": SCRAM_USER,
                "ESCALATION_SASL_PASSWORD": SCRAM_PASSWORD,
            }
        )
    return env


def client_config(env: dict[str, str]) -> dict[str, Any]:
    settings = Settings(
        **{
            key.removeprefix("ESCALATION_").lower(): value
            for key, value in env.items()
            if key.startswith("ESCALATION_")
        }
    )
    return client_security(settings, env["KAFKA_BOOTSTRAP_SERVERS"]).librdkafka()


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def decisions_for(config: dict[str, Any], topic: str, event_id: str) -> dict[str, Any]:
    consumer = Consumer({**config, "group.id": f"tls-{uuid.uuid4().hex}"})
    serde = serde_for_topic("escalation.decisions")
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for msg in consumer.consume(100, timeout=0.5):
                if not msg.error():
                    record = serde.decode(msg.value())
                    if record["event_id"] == event_id:
                        return record
    finally:
        consumer.close()
    raise AssertionError(f"no decision for {event_id} on {topic}")


def produce(config: dict[str, Any], prefix: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    producer = Producer(config)
    topics = {"account": "support.accounts", "message": "support.messages"}
    for kind, record in events:
        topic = topics[kind]
        producer.produce(
            f"{prefix}{topic}",
            key=record["customer_id"].encode(),
            value=serde_for_topic(topic).encode(record),
        )
    assert producer.flush(30) == 0


def policy_version(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/policy/", timeout=5) as response:
            version: str = json.load(response)["version"]
            return version
    except OSError:
        return None


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_topics_worker_and_clients_work_over_tls(
    tls_broker: PrivateBroker, protocol: str, tmp_path: Path
) -> None:
    prefix = f"{protocol.lower()}-{uuid.uuid4().hex[:6]}."
    env = environment(tls_broker, protocol, prefix)
    config = client_config(env)

    # Given the topics created by `escalation topics` over this listener
    created = run([*ESCALATION, "topics"], env)
    assert created.returncode == 0, created.stderr
    assert f"{prefix}support.accounts" in created.stdout and "created" in created.stdout
    # And checking them again over the same listener finds nothing to change
    checked = run([*ESCALATION, "topics", "--check"], env)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # When a worker runs over it and a customer asks for a person
    port = free_port()
    worker_env = {**env, "ESCALATION_DATA_DIR": str(tmp_path), "ESCALATION_WEB_PORT": str(port)}
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream.worker"],
            cwd=REPO,
            env=worker_env,
            stdout=log,
            stderr=log,
        )
    try:
        readiness.wait_until_consuming(config, f"{prefix}worker", f"{prefix}support.accounts")
        produce(
            config,
            prefix,
            [
                account("c-tls", T0),
                message("c-tls", "v-tls", 1, T0 + 1, "customer", "Can I talk to a human agent?"),
            ],
        )

        # Then its decision comes back over TLS, from the worker that read and wrote over TLS
        decision = decisions_for(config, f"{prefix}escalation.decisions", "msg-v-tls-1")
        assert decision["action"] == "escalate"
        assert decision["triggers"][0]["trigger"] == "explicit_request"

        # And a policy published with `escalation policy publish` reaches its policy feed
        text = (REPO / "policy" / "default.yaml").read_text()
        version = f"tls-{uuid.uuid4().hex[:6]}"
        candidate = tmp_path / "policy.yaml"
        old = next(line for line in text.splitlines() if line.startswith("version:"))
        candidate.write_text(text.replace(old, f"version: {version}"))
        published = run([*ESCALATION, "policy", "publish", str(candidate)], env)
        assert published.returncode == 0, published.stderr
        deadline = time.monotonic() + 60
        while policy_version(port) != version:
            assert time.monotonic() < deadline, f"policy {version} not adopted over {protocol}"
            assert worker.poll() is None, log_path.read_text()[-3000:]
            time.sleep(1)
    finally:
        stop(worker)


def test_incomplete_settings_are_refused_by_every_command(
    tls_broker: PrivateBroker, tmp_path: Path
) -> None:
    # Given SASL_SSL settings without a password (the other cases: tests/test_security.py)
    env = environment(tls_broker, "SASL_SSL", "bad.")
    del env["ESCALATION_SASL_PASSWORD"]
    for command in (
        [*ESCALATION, "topics", "--check"],
        [*ESCALATION, "policy", "publish", str(REPO / "policy" / "default.yaml")],
        [*ESCALATION, "worker"],
        [sys.executable, "-m", "stream.worker"],
    ):
        # Then each command refuses them in one line, before it connects
        done = run(command, {**env, "ESCALATION_DATA_DIR": str(tmp_path)})
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "needs ESCALATION_SASL_PASSWORD" in done.stderr, (command, done.stderr)
        assert "Traceback" not in done.stderr, (command, done.stderr)
