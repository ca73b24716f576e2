"""Replayed events as an event file (JSON Lines, DESIGN section 6), and the counts docs quote."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, TextIO

from stream.replay.config import DAY_MS


def write_jsonl(events: Iterable[tuple[str, dict[str, Any]]], out: TextIO) -> int:
    """Write DESIGN section 6 event-file lines, `{"type": ..., **record}`; returns the count."""
    count = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    write = out.write
    for event_type, record in events:
        write(dumps({"type": event_type, **record}))
        write("\n")
        count += 1
    return count


def summarize(
    events: Iterable[tuple[str, dict[str, Any]]], repeat_n: int = 3, window_days: float = 7.0
) -> dict[str, int]:
    """Counts for docs and benchmarks: events by type, customers, and repeat contacts.

    `repeat_contacts` counts opened contacts that are at least the `repeat_n`-th on the same
    customer and issue key within `window_days` (event time), i.e. where the repeat-contact
    trigger of the shipped policy would fire.
    """
    by_type: Counter[str] = Counter()
    customers: set[str] = set()
    opened: dict[tuple[str, str], list[int]] = defaultdict(list)
    returning: set[str] = set()
    repeats = 0
    window = int(window_days * DAY_MS)
    for event_type, record in events:
        by_type[event_type] += 1
        customers.add(record["customer_id"])
        if event_type == "contact" and record["action"] == "opened":
            times = opened[(record["customer_id"], record["issue_key"])]
            times.append(record["occurred_at"])
            if len(times) > 1:
                returning.add(record["customer_id"])
            if sum(1 for t in times if record["occurred_at"] - t < window) >= repeat_n:
                repeats += 1
    summary = {f"events.{name}": count for name, count in sorted(by_type.items())}
    summary["events"] = sum(by_type.values())
    summary["customers"] = len(customers)
    summary["conversations"] = sum(len(t) for t in opened.values())
    summary["issues"] = len(opened)
    summary["customers_back_on_same_issue"] = len(returning)
    summary["repeat_contacts"] = repeats
    return summary
