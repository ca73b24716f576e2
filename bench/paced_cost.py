"""CPU per event of `step` alone, run flat out and run the way paced traffic runs it.

Usage: .venv/bin/python bench/paced_cost.py [--events N] [--chunk N] [--pauses MS,...] [--rounds N]

A worker fed at a steady rate folds a few records, then waits for the next fetch; on a backlog it
folds without pause. The same records cost more CPU the first way on some machines (caches and
branch predictors gone cold while the CPU idled or ran another process, a virtual CPU halted
and handed back to the host), so a paced worker can be busier than the ratio of its rate to its
backlog rate says. No Kafka and no Faust here: the same events go through `step` in one tight
loop, and in chunks of `--chunk` events with a sleep between chunks, alternating, several
rounds; CPU is the process's (`time.process_time`), the sleeps are not in it. Writes
bench/results/paced_cost.json. Not a test: nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.core.events import Event  # noqa: E402
from stream.core.policy import Policy, default_policy  # noqa: E402
from stream.core.state import CustomerState  # noqa: E402
from stream.core.step import step  # noqa: E402
from stream.testing import synthetic_events  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "paced_cost.json"


def cpu_us_per_event(events: list[Event], policy: Policy, chunk: int, pause_s: float) -> float:
    """Fold every event from empty states; sleep `pause_s` after each `chunk` (0: never)."""
    states: dict[str, CustomerState] = {}
    started = time.process_time()
    for i, event in enumerate(events, 1):
        states[event.customer_id] = step(states.get(event.customer_id), event, policy).state
        if chunk and i % chunk == 0:
            time.sleep(pause_s)
    return (time.process_time() - started) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--chunk", type=int, default=20, help="events folded between pauses")
    parser.add_argument("--pauses", default="1,2,5,10", help="pauses to try, in ms")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    try:
        pauses = [float(p) for p in args.pauses.split(",") if p.strip()]
    except ValueError:
        parser.error(f"--pauses takes milliseconds like 1,5,10, not {args.pauses!r}")
    if args.events < 1 or args.chunk < 1 or args.rounds < 1 or not pauses:
        parser.error("--events, --chunk and --rounds must be at least 1, with a pause or more")
    events = synthetic_events(args.events, customers=args.customers, seed=1)
    policy = default_policy()
    cpu_us_per_event(events, policy, 0, 0.0)  # warm-up: imports, compiled rules, allocator

    flat: list[float] = []
    paced: dict[float, list[float]] = {p: [] for p in pauses}
    for _ in range(args.rounds):
        # Alternating, so a slow minute of a shared machine falls on both.
        flat.append(cpu_us_per_event(events, policy, 0, 0.0))
        for pause in pauses:
            paced[pause].append(cpu_us_per_event(events, policy, args.chunk, pause / 1000))

    flat_median = statistics.median(flat)
    result: dict[str, Any] = {
        "command": "python bench/paced_cost.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "events": args.events,
        "chunk": args.chunk,
        "rounds": args.rounds,
        "flat_out_us_per_event": {"median": round(flat_median, 1), "all": _r(flat)},
        "paced": [
            {
                "pause_ms": pause,
                "us_per_event_median": round(statistics.median(runs), 1),
                "all": _r(runs),
                "ratio_to_flat_out": round(statistics.median(runs) / flat_median, 2),
            }
            for pause, runs in paced.items()
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("flat_out_us_per_event", "paced")}, indent=2))


def _r(values: list[float]) -> list[float]:
    return [round(v, 1) for v in values]


if __name__ == "__main__":
    main()
