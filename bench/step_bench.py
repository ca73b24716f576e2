"""Events per second of `step` alone, on a deterministic synthetic mix of all five event types.

Usage: .venv/bin/python bench/step_bench.py [--events N] [--customers N] [--seed N]

The mix resembles a support stream: mostly messages (customer, AI and some human-agent turns),
sentiment scores for customer turns, contacts opening and closing conversations, occasional
account snapshots and ticketing outcomes. States live in a dict, as in the backtest; no
serialisation is measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.core.policy import default_policy  # noqa: E402
from stream.core.state import CustomerState  # noqa: E402
from stream.core.step import step  # noqa: E402
from stream.testing import synthetic_events  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    policy = default_policy()
    events = synthetic_events(args.events, args.customers, args.seed)
    states: dict[str, CustomerState] = {}
    decisions = handoffs = 0
    actions: dict[str, int] = {}
    started = time.perf_counter()
    for event in events:
        result = step(states.get(event.customer_id), event, policy)
        states[event.customer_id] = result.state
        decisions += len(result.decisions)
        for decision in result.decisions:
            actions[decision.action] = actions.get(decision.action, 0) + 1
        handoffs += len(result.handoffs)
    elapsed = time.perf_counter() - started
    print(
        f"step: {len(events)} events in {elapsed:.2f}s = {len(events) / elapsed:,.0f} events/s "
        f"({decisions} decisions {actions}, {handoffs} handoff packages, {len(states)} customers)"
    )


if __name__ == "__main__":
    main()
