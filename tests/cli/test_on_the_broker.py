"""The commands on a real broker whose topics are missing or just made, run as a user runs them.

A missing topic is exit 1 in every command, as `topics --check` reports it: the call is right, the
cluster is not ready (`escalation topics` makes it). `lag --watch` into a pipe prints a line per
refresh.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.topics import INPUT_TOPICS
from tests.commands import run_module
from tests.integration.kafka_helpers import (
    BOOTSTRAP,
    Isolated,
    broker_available,
    cli_env,
    free_port,
    isolated_topics,
    produce_raw,
    set_topic_config,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def no_topics(tmp_path: Path) -> dict[str, str]:
    """The environment of a command whose topic prefix names no topic on the broker."""
    if not broker_available():
        pytest.skip("no Kafka broker; start one with deploy/kafka/kafka.sh up")
    prefix = f"it-none{uuid.uuid4().hex[:10]}."
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATION_TOPIC_PREFIX": prefix,
        "ESCALATION_APP_ID": f"{prefix}worker",
        "ESCALATION_DATA_DIR": str(tmp_path / "data"),
        # Not the default 6066, which a worker of another checkout may hold.
        "ESCALATION_WEB_PORT": str(free_port()),
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["lag"], "error: topic '{prefix}support.messages' does not exist\n"),
        (["lag", "--topic", "{prefix}typo"], "error: topic '{prefix}typo' does not exist\n"),
        (["backtest", "--policy", "policy/default.yaml", "--from", "2024-06-01", "--to",
          "2024-06-02", "--out", "{tmp}/out/report"],
         "error: topic '{prefix}support.messages' (message events) does not exist\n"),
        (["export", "--from", "2024-06-01", "--to", "2024-06-02", "--out", "{tmp}/out/e.jsonl"],
         "error: topic '{prefix}support.messages' (message events) does not exist\n"),
        (["calibrate", "--month", "2024-06", "--policy", "policy/default.yaml", "--from-topics",
          "--out", "{tmp}/out/review"],
         "error: topic '{prefix}support.messages' (message events) does not exist\n"),
        (["replay", "--conversations", "2"],
         "error: topic '{prefix}support.messages' (message events) does not exist; run "
         "`escalation topics` with the same ESCALATION_* settings to create it\n"),
        (["policy", "publish", "policy/default.yaml"],
         "error: topic '{prefix}escalation.policy' does not exist; run `escalation topics` with "
         "the same ESCALATION_* settings to create it\n"),
        (["worker"], "{prefix}support.messages: drift: does not exist"),
        (["topics", "--check"], ""),
    ],
    ids=["lag", "lag-topic", "backtest", "export", "calibrate", "replay", "policy-publish",
         "worker", "topics"],
)  # fmt: skip
def test_a_missing_topic_is_exit_1_in_every_command(
    no_topics: dict[str, str], tmp_path: Path, args: list[str], expected: str
) -> None:
    prefix = no_topics["ESCALATION_TOPIC_PREFIX"]
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{prefix}", prefix) for a in args]
    done = run_module("stream.cli", *argv, env=no_topics)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    if args[0] in ("worker", "topics"):  # a list of every difference, on stderr or stdout
        listing = done.stderr + done.stdout
        assert f"{prefix}support.messages" in listing and "does not exist" in listing
        assert expected.format(prefix=prefix) in listing
    else:
        assert done.stderr == expected.format(prefix=prefix)
        assert done.stdout == ""
    assert not (tmp_path / "out").exists()  # and no output folder is left behind


@pytest.fixture(scope="module")
def isolated() -> Iterator[Isolated]:
    yield from isolated_topics()


def test_lag_watch_into_a_pipe_prints_one_line_per_refresh(isolated: Isolated) -> None:
    for n in range(3):
        produce_raw(isolated, "support.messages", f"c-{n}".encode(), b"x")
    done = run_module(
        "stream.cli", "lag", "--watch", "--count", "2", "--interval", "0.2",
        env=cli_env(isolated), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    topics = ", ".join(f"{name} {3 if name == 'support.messages' else 0}" for name in INPUT_TOPICS)
    shape = re.compile(
        rf"\d\d:\d\d:\d\d group {re.escape(isolated.app_id)}: lag 3, "
        rf"time lag \d+(\.\d)?[smhd] \({re.escape(topics)}\)"
    )
    assert all(shape.fullmatch(line) for line in lines), lines
    assert "\x1b" not in done.stdout  # no escape codes of a live table


def test_replay_into_a_log_writes_no_progress_bar(isolated: Isolated) -> None:
    # stderr is a pipe here, as in a log file or CI: the bar's carriage returns would be noise.
    done = run_module("stream.cli", "replay", "--conversations", "3", env=cli_env(isolated))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert re.fullmatch(r"delivered \d+ events: \{.*\}\n", done.stdout)


def test_a_policy_the_broker_refuses_is_not_reported_published(isolated: Isolated) -> None:
    # A policy topic that takes no record of this size: the delivery fails, and so must the command.
    set_topic_config(isolated.topic("escalation.policy"), max_message_bytes="512")
    done = run_module(
        "stream.cli", "policy", "publish", "policy/default.yaml", "--skip-tests",
        env=cli_env(isolated), timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert "published policy" not in done.stdout
    assert done.stderr.endswith(
        f"error: policy 2026.11-default-turn-signal-2 not published to "
        f"{isolated.topic('escalation.policy')}: Broker: Message size too large\n"
    )


def test_worker_on_a_web_port_that_is_taken(isolated: Isolated, tmp_path: Path) -> None:
    # Checked before Faust starts, whose own error was two tracebacks for the same sentence.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = cli_env(isolated, ESCALATION_WEB_PORT=str(port), ESCALATION_DATA_DIR=str(tmp_path))
        done = run_module("stream.cli", "worker", env=env, timeout=120)
    assert done.returncode == 1
    assert done.stderr == (
        f"error: cannot serve the worker's metrics and health on port {port} "
        "(ESCALATION_WEB_PORT): Address already in use\n"
    )


def test_an_export_of_a_range_with_no_event_fails_and_keeps_the_file_there(
    isolated: Isolated, tmp_path: Path
) -> None:
    # As a backtest of the same range: an empty file would pass for a frozen test set.
    out = tmp_path / "history.jsonl"
    out.write_text("an earlier export\n")
    done = run_module(
        "stream.cli", "export", "--from", "2020-01-01", "--to", "2020-01-02", "--out", str(out),
        env=cli_env(isolated), timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "error: the input topics hold no event appended between 2020-01-01 and 2020-01-02: "
        "nothing to export\n"
    )
    assert out.read_text() == "an earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl"]
