"""A proposal written over the current policy file (values: `stream.core.policy_values`).

The proposal keeps the current file's text, comments and order (ruamel.yaml round trip), changes
only the proposed values, gives it a new version, and puts a changelog comment on each changed
line, so a reviewer reads the proposal as a small edit of the policy they know.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from stream.core.policy import parse_policy


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
