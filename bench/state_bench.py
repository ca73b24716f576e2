"""Bytes of stored state per customer, before (escaped JSON) and after (statecodec version 2).

Usage: .venv/bin/python bench/state_bench.py [--sizes 1000,3000,10000] [--out PATH]

Replays the first N real airline conversations (stream.replay, 30 days of event time) through
the backtest's fold, then measures each customer's final state: what the table stored before
(JSON with ASCII escapes, as Faust's json codec wrote it) and what it stores now. At the end of a
replay most customers are idle (their conversations are over), so this is the bytes an idle
customer costs; running several sizes shows how it grows with the customer count.
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
from stream.core.policy import default_policy  # noqa: E402
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
    before = []
    after = []
    for state in result.states.values():
        before.append(len(json.dumps(state.to_record()).encode()))
        after.append(len(statecodec.encode(state, policy.state.max_state_bytes)[0]))

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
        "bytes_before_escaped_json": summary(before),
        "bytes_after_statecodec_v2": summary(after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,3000,10000")
    parser.add_argument("--out", type=Path, default=Path("bench/results/state.json"))
    args = parser.parse_args()
    started = time.time()
    runs = [measure(int(size)) for size in args.sizes.split(",")]
    report = {
        "bench": "stored state bytes per customer at the end of a replay",
        "command": f".venv/bin/python bench/state_bench.py --sizes {args.sizes}",
        "machine": "shared 2-core machine",
        "seconds": round(time.time() - started, 1),
        "runs": runs,
        "not_measured": [
            "worker RSS at 100k and 1M synthetic customers",
            "recovery time from the changelog for 100k customers",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
