"""The publish gate: a policy reaches the policy topic only after its suite passes, and the
operator sees what changes against the policy in force before it does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from stream.core.policy import Policy

_MISSING = object()


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        if not value and path:
            out[path] = {}
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    else:
        out[path] = value


def _comparable(policy: Policy) -> dict[str, Any]:
    """The policy as field paths; operator rules keyed by name, so reordering is no change."""
    data = policy.model_dump(mode="json", by_alias=True)
    data["rules"] = {rule.pop("name"): rule for rule in data.get("rules", [])}
    out: dict[str, Any] = {}
    _flatten(data, "", out)
    return out


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def value_diff(old: Policy, new: Policy) -> list[str]:
    """One line per changed value: `path: old → new`; the version line first."""
    before = _comparable(old)
    after = _comparable(new)
    changed = [
        path
        for path in sorted(set(before) | set(after), key=lambda p: (p != "version", p))
        if before.get(path, _MISSING) != after.get(path, _MISSING)
    ]
    lines: list[str] = []
    for path in changed:
        was = before.get(path, _MISSING)
        now = after.get(path, _MISSING)
        emptied = (was == {} and now is _MISSING) or (now == {} and was is _MISSING)
        if emptied and any(other.startswith(f"{path}.") for other in changed):
            continue  # an empty mapping that gained or lost entries: the entries say it
        lines.append(f"{path}: {_show(was)} → {_show(now)}")
    return lines


def read_policy_in_force(
    topic: str, client_config: dict[str, Any], initial: Policy, timeout_s: float = 15.0
) -> tuple[Policy, str]:
    """The policy the workers run: the last valid record of the policy topic, judged by the
    worker's own `PolicyInForce`, or `initial` (their start-up file) when none is valid."""
    import time

    from stream.worker.policy_feed import (
        PolicyInForce,
        PolicyTopicError,
        next_policy_record,
        policy_topic_consumer,
    )

    holder = PolicyInForce(initial)
    consumer = policy_topic_consumer(client_config, "policy-publish")
    adopted: str | None = None
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return initial, f"the start-up policy file (topic {topic} does not exist)"
        partitions = set(found.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while at_end < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout_s:g} s")
            try:
                msg = next_policy_record(consumer, at_end)
            except PolicyTopicError as exc:
                raise RuntimeError(f"reading {topic}: {exc}") from None
            if msg is not None and holder.offer(msg.value()).adopted:
                adopted = f"{topic} at offset {msg.offset()}"
    finally:
        consumer.close()
    if adopted is None:
        return initial, f"the start-up policy file (no valid policy on {topic} yet)"
    return holder.get(), adopted
