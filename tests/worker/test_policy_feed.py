"""The policy feed survives any document: too big, too deep, not YAML, not a policy, or a bug."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stream.core.policy import default_policy
from stream.serde import serde_for_topic
from stream.worker import metrics
from stream.worker.policy_feed import (
    MAX_POLICY_BYTES,
    MAX_YAML_DEPTH,
    PolicyFeed,
    PolicyInForce,
    yaml_bound_problem,
)

DEFAULT_TEXT = (Path(__file__).resolve().parents[2] / "policy" / "default.yaml").read_text()


def document(yaml_text: str, version: str) -> bytes:
    record = {"version": version, "yaml": yaml_text, "published_at": 0, "author": "tests"}
    return serde_for_topic("escalation.policy").encode(record)


def newer(version: str) -> bytes:
    old = default_policy().version
    return document(DEFAULT_TEXT.replace(old, version), version)


DEEP = "[" * 5000 + "]" * 5000
HOSTILE = {
    "deeply nested flow": (DEEP, "nested deeper than 32"),
    "deeply nested block": (
        "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n",
        "nested deeper than 32",
    ),
    "huge": ("x: " + "y" * (MAX_POLICY_BYTES + 10), "bytes, over"),
    "not yaml": ("a: [1, 2\nb: }", "not valid YAML"),
    "not a mapping": ("- 1\n- 2\n", "must be a YAML mapping"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_document_is_refused_and_a_newer_valid_one_is_adopted(name: str) -> None:
    # Given the default policy in force
    holder = PolicyInForce(default_policy())
    text, reason = HOSTILE[name]

    # When a hostile document is offered, then a valid newer one
    refused = holder.offer(document(text, "hostile-1"))
    adopted = holder.offer(newer("tests-after-hostile"))

    # Then the first is refused naming why, and the second is adopted
    assert not refused.adopted and reason in refused.reason
    assert adopted.adopted and holder.get().version == "tests-after-hostile"


def test_nesting_within_the_bound_is_parsed() -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(MAX_YAML_DEPTH - 1)) + "  " * 40 + "v: 1\n"
    assert yaml_bound_problem(text) is None


def test_a_bug_in_parsing_is_a_verdict_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    import stream.worker.policy_feed as feed_module

    def broken(text: str) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(feed_module, "parse_policy", broken)
    verdict = PolicyInForce(default_policy()).offer(newer("tests-bug"))
    assert not verdict.adopted and verdict.reason == "KeyError: 'a bug'"


def test_the_feed_thread_keeps_going_when_dead_lettering_fails() -> None:
    # Given a feed whose dead-letter producer is broken
    holder = PolicyInForce(default_policy())

    def reject(*args: Any) -> None:
        raise RuntimeError("broker gone")

    feed = PolicyFeed(holder, "escalation.policy", {}, reject)

    # When it handles a hostile record and then a valid one
    feed._handle(b"default", document(DEEP, "deep"), 0, 1)
    feed._handle(b"default", newer("tests-feed"), 0, 2)

    # Then both were counted, the error is kept for readiness, and the valid one is in force
    assert feed.health.rejected == 1 and feed.health.adopted == 1
    assert "broker gone" in (feed.health.last_error or "")
    assert holder.get().version == "tests-feed"


def test_a_consumer_that_fails_is_rebuilt_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    holder = PolicyInForce(default_policy())
    feed = PolicyFeed(holder, "escalation.policy", {}, lambda *a: None)
    calls: list[int] = []

    def follow() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("consumer died")
        feed.stop()

    monkeypatch.setattr(feed, "_follow", follow)
    monkeypatch.setattr(feed._stopping, "wait", lambda timeout: None)
    feed.run()
    assert len(calls) == 3 and feed.health.restarts == 2
    assert feed.health.last_error == "RuntimeError: consumer died"
    assert metrics.POLICY_FEED_HEALTHY._value.get() == 0


def test_transient_errors_are_logged_at_most_once_per_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    feed = PolicyFeed(PolicyInForce(default_policy()), "t", {}, lambda *a: None)
    logged: list[dict[str, Any]] = []
    import stream.worker.policy_feed as feed_module

    original = feed_module.log
    feed_module.log = type("L", (), {"warning": lambda self, *a, **k: logged.append(k)})()
    try:
        start = time.monotonic()
        for _ in range(10_000):
            feed._transient_error("all brokers down")
    finally:
        feed_module.log = original
    assert len(logged) == 1 or time.monotonic() - start > 10
    assert feed.health.last_error == "all brokers down"
