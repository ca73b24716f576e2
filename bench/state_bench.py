"""Bytes of stored state per customer: as left at the end of a replay, and once idle (expired).

Usage: .venv/bin/python bench/state_bench.py [--sizes 1000,3000,10000,30000] [--out PATH]

Replays the first N real airline conversations (stream.replay, 30 days of event time) through
the backtest's fold (which is `step`, with its idle expiry, and the byte budget), then measures
each customer's stored state (stream/core/statecodec.py) two ways:
- `at_end`: the state as the replay leaves it. Expiry runs when the customer's own watermark
  moves, so a customer whose last event was recent keeps its last conversations: this is what a
  customer with no new event keeps.
- `idle`: the state once the customer's watermark has passed the judging horizon and the repeat
  window (plus the lateness) after its last event: what its next event (any kind) leaves behind,
  before that event's own fold. This is the bytes an idle customer costs when it comes back.
- `swept_at_end`: the worker's idle sweep (stream/core/sweep.py) run once at the end of the replay,
  at the floor a partition would have then: the replay's last event time minus the past bound
  (7 days). Customers gone (nothing left, deleted from the table) count as 0 B.
- `swept_idle`: the sweep once the floor is past every customer's windows: what a customer with
  no new event costs for good. Customers deleted are counted apart and as 0 B.
Also the escaped JSON the table stored before statecodec, for reference. Several sizes show the
growth with the customer count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.backtest.run import run_policy  # noqa: E402
from stream.core import statecodec  # noqa: E402
from stream.core.events import event_from_dict  # noqa: E402
from stream.core.eventtime import DEFAULT_BOUNDS  # noqa: E402
from stream.core.expiry import expire, horizon_ms  # noqa: E402
from stream.core.policy import default_policy  # noqa: E402
from stream.core.sweep import sweep  # noqa: E402
from stream.replay import ReplayConfig, iter_events  # noqa: E402
from stream.settings import Settings  # noqa: E402

SOURCE = Settings().datasets_dir / "twcs-airlines" / "airlines_raw.csv.bz2"


def measure(conversations: int) -> dict[str, Any]:
    policy = default_policy()
    events = [
        event_from_dict(kind, record)
        for kind, record in iter_events(SOURCE, ReplayConfig(conversations=conversations))
    ]
    result = run_policy(events, policy, keep=False)
    budget = policy.state.max_state_bytes
    compiled = policy.compiled
    idle_after = max(horizon_ms(policy), compiled.repeat_window_ms) + 2 * compiled.lateness_ms + 1
    escaped = []
    at_end = []
    idle = []
    swept_at_end: list[int] = []
    swept_idle: list[int] = []
    gone = {"at_end": 0, "idle": 0}
    last_event = max(e.occurred_at for e in events)
    floors = {
        "at_end": last_event - DEFAULT_BOUNDS.behind_stream_ms,
        "idle": last_event + idle_after,
    }
    # Items kept, at the end and once idle: what still stays after expiry is open (never closed)
    # conversations and escalated ones evicted while open (remembered as closed, time -1).
    left = dict.fromkeys(
        (
            "conversations",
            "closed",
            "contacts",
            "idle_conversations",
            "idle_closed",
            "idle_contacts",
        ),
        0,
    )
    for state in result.states.values():
        escaped.append(len(json.dumps(state.to_record()).encode()))
        at_end.append(len(statecodec.encode(state, budget)[0]))
        for name, sizes in (("at_end", swept_at_end), ("idle", swept_idle)):
            copy = statecodec.decode(statecodec.encode(state, budget)[0])
            if sweep(copy, floors[name], policy) == "gone":
                gone[name] += 1
                sizes.append(0)
            else:
                sizes.append(len(statecodec.encode(copy, budget)[0]))
        left["conversations"] += len(state.conversations)
        left["closed"] += len(state.closed)
        left["contacts"] += len(state.contacts)
        state.watermark += idle_after
        expire(state, policy)
        idle.append(len(statecodec.encode(state, budget)[0]))
        left["idle_conversations"] += len(state.conversations)
        left["idle_closed"] += len(state.closed)
        left["idle_contacts"] += len(state.contacts)

    def summary(sizes: list[int]) -> dict[str, Any]:
        ordered = sorted(sizes)
        return {
            "mean": round(statistics.fmean(sizes), 1),
            "median": ordered[len(ordered) // 2],
            "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "max": ordered[-1],
            "total": sum(sizes),
        }

    return {
        "conversations": conversations,
        "events": len(events),
        "customers": len(result.states),
        "bytes_at_end_of_replay": summary(at_end),
        "bytes_idle_after_expiry": summary(idle),
        "bytes_swept_at_end_of_replay": summary(swept_at_end),
        "bytes_swept_once_idle": summary(swept_idle),
        "deleted_by_sweep": gone,
        "bytes_at_end_escaped_json_before_statecodec": summary(escaped),
        "items_at_end_and_idle": left,
        "idle_after_ms": idle_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000,10000,30000")
    # Beside this script, wherever it is run from.
    results = Path(__file__).resolve().parent / "results" / "state.json"
    parser.add_argument("--out", type=Path, default=results)
    args = parser.parse_args()
    started = time.time()
    runs = [measure(int(size)) for size in args.sizes.split(",")]
    report = {
        "bench": "stored state bytes per customer: at the end of a replay, and idle after expiry",
        "command": f".venv/bin/python bench/state_bench.py --sizes {args.sizes}",
        "machine": "shared 2-core machine",
        "seconds": round(time.time() - started, 1),
        "runs": runs,
        "target": "idle customer mean <= 512 B",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
