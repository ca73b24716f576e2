"""Refuse to start on topics that do not match their definitions.

A worker that starts on missing topics lets the broker auto-create them with its defaults (an
accounts topic that is not compacted, a dead-letter topic kept 7 days instead of 30), and the
damage shows much later. Checking at start turns that into one clear error naming the fix.
"""

from __future__ import annotations

from typing import Any

from stream.errors import RunError
from stream.settings import Settings
from stream.topics import TopicReport, ensure_topics, load_definitions


class TopicsNotReady(RunError):
    """The cluster's topics differ from `topics/`; the message lists each difference.

    Exit 1, as `escalation topics --check` on the same drift: the command is right, the cluster
    is not ready for it yet.
    """


def check_worker_topics(settings: Settings, client_config: dict[str, Any]) -> list[TopicReport]:
    """Every defined topic under the settings' prefix, checked without changing anything."""
    definitions = {
        settings.topic(name): definition.renamed(settings.topic(name))
        for name, definition in load_definitions().items()
    }
    reports = ensure_topics(client_config, definitions, apply=False, timeout=15.0)
    problems = [r for r in reports if r.status != "ok"]
    if problems:
        listing = "\n".join(f"  {r.topic}: {r.status}: {r.detail}" for r in problems)
        raise TopicsNotReady(
            f"{len(problems)} of the worker's topics do not match their definitions under "
            f"topics/:\n{listing}\nrun `escalation topics` (with the same ESCALATION_* "
            "settings) to create or update them, then start the worker again"
        )
    return reports
