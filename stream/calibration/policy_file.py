"""Policy files as values: a value-by-value diff, and a proposal written over the current file.

The proposal keeps the current file's text, comments and order (ruamel.yaml round trip), changes
only the proposed values, gives it a new version, and puts a changelog comment on each changed
line, so a reviewer reads the proposal as a small edit of the policy they know.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from stream.core.policy import Policy, parse_policy


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


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=2, offset=0)
    return yaml


def write_proposal(
    current_text: str,
    version: str,
    changes: Sequence[tuple[str, Any, str]],
    header: Sequence[str],
) -> str:
    """The current file with `changes` (`(dotted path, new value, changelog note)`) applied."""
    yaml = _yaml()
    doc = yaml.load(current_text)
    if not isinstance(doc, CommentedMap):
        raise ValueError("the current policy file is not a YAML mapping")
    doc["version"] = version
    for path, value, note in changes:
        node = doc
        *parents, last = path.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, CommentedMap):
                child = CommentedMap()
                node[part] = child
            node = child
        node[last] = value
        # A flow-style mapping ({a: 1}) has no line per value to carry a comment.
        if node.fa.flow_style():
            node.fa.set_block_style()
        node.yaml_add_eol_comment(note, last)
    out = io.StringIO()
    yaml.dump(doc, out)
    text = "".join(f"# {line}\n" if line else "#\n" for line in header) + out.getvalue()
    parse_policy(text)  # a proposal that does not validate is a bug here, not a user error
    return text
