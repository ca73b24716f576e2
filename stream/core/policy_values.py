"""A policy as values by dotted path (`confidence.thresholds.financial`): flattened, compared
value by value, and changed into a validated copy.

Pure: the review, the backtest report and the simulated world all edit or compare policies this
way, so it lives below all three.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stream.core.policy import Policy


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """`{"confidence.thresholds.financial": 0.9, ...}`; lists stay whole values."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value
    return out


def policy_values(policy: Policy) -> dict[str, Any]:
    return flatten(policy.model_dump(mode="json"))


def diff(old: Policy, new: Policy) -> list[dict[str, Any]]:
    """Every value that differs, as `{path, old, new}`, in the file's order."""
    a, b = policy_values(old), policy_values(new)
    rows = []
    for path in list(a) + [p for p in b if p not in a]:
        if a.get(path) != b.get(path):
            rows.append({"path": path, "old": a.get(path), "new": b.get(path)})
    return rows


def with_values(policy: Policy, changes: Mapping[str, Any], version: str | None = None) -> Policy:
    """A copy of `policy` with dotted-path values replaced, validated like a file."""
    raw = policy.model_dump(mode="json")
    for path, value in changes.items():
        node = raw
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    if version is not None:
        raw["version"] = version
    return Policy.model_validate(raw)
