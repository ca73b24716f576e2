"""Events per second of `step` alone, on a deterministic synthetic mix of all five event types.

Usage: .venv/bin/python bench/step_bench.py [--events N] [--customers N] [--seed N] [--stages]

The mix resembles a support stream: mostly messages (customer, AI and some human-agent turns),
sentiment scores for customer turns, contacts opening and closing conversations, occasional
account snapshots and ticketing outcomes. States live in a dict, as in the backtest; no
serialisation is measured. `--stages` adds the worker's other per-event costs on the same events,
each the best of several repeats (robust to a loaded machine): Avro decode, `event_from_dict`,
decision and handoff encoding (`to_record` and Avro), and the state's stored encoding
(`statecodec.encode`) and decoding that a table write and a cache miss cost.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.core import statecodec  # noqa: E402
from stream.core.events import Event, event_from_dict, event_to_dict  # noqa: E402
from stream.core.policy import default_policy  # noqa: E402
from stream.core.state import CustomerState  # noqa: E402
from stream.core.step import StepResult, step  # noqa: E402
from stream.serde import serde_for_topic  # noqa: E402
from stream.testing import synthetic_events  # noqa: E402
from stream.topics import EVENT_TOPICS  # noqa: E402


def per_call_us(run: Callable[[], Any], calls: int, repeat: int = 5) -> float:
    """Microseconds per call, best of `repeat` runs of `run` (which makes `calls` calls)."""
    return round(min(timeit.repeat(run, number=1, repeat=repeat)) / max(calls, 1) * 1e6, 2)


def stages(events: Sequence[Event], results: Sequence[StepResult]) -> dict[str, float]:
    """The worker's per-event costs besides `step`, on the same events and what they produced."""
    records = [(event.type, event_to_dict(event)) for event in events]
    serdes = {kind: serde_for_topic(name) for kind, name in EVENT_TOPICS.items()}
    encoded = [(kind, serdes[kind].encode(record)) for kind, record in records]
    decisions = [d for r in results for d in r.decisions]
    handoffs = [h for r in results for h in r.handoffs]
    decision_serde = serde_for_topic("escalation.decisions")
    handoff_serde = serde_for_topic("escalation.handoffs")
    decision_records = [d.to_record() for d in decisions]
    handoff_records = [h.to_record() for h in handoffs]
    # Copies: encoding trims a state to the byte budget in place.
    states = {r.state.customer_id: copy.deepcopy(r.state) for r in results}
    budget = default_policy().state.max_state_bytes
    stored = [statecodec.encode(s, budget)[0] for s in states.values()]
    return {
        "avro_decode_us_per_event": per_call_us(
            lambda: [serdes[k].decode(v) for k, v in encoded], len(encoded)
        ),
        "event_from_dict_us_per_event": per_call_us(
            lambda: [event_from_dict(k, r) for k, r in records], len(records)
        ),
        "decision_to_record_us": per_call_us(
            lambda: [d.to_record() for d in decisions], len(decisions)
        ),
        "decision_avro_encode_us": per_call_us(
            lambda: [decision_serde.encode(r) for r in decision_records], len(decisions)
        ),
        "handoff_to_record_us": per_call_us(
            lambda: [h.to_record() for h in handoffs], len(handoffs)
        ),
        "handoff_avro_encode_us": per_call_us(
            lambda: [handoff_serde.encode(r) for r in handoff_records], len(handoffs)
        ),
        "state_encode_us_per_write": per_call_us(
            lambda: [statecodec.encode(s, budget) for s in states.values()], len(states)
        ),
        "state_decode_us_per_read": per_call_us(
            lambda: [statecodec.decode(b) for b in stored], len(stored)
        ),
        "state_stored_bytes_mean": round(sum(map(len, stored)) / max(len(stored), 1)),
        "decisions_per_event": round(len(decisions) / len(events), 3),
        "handoffs_per_event": round(len(handoffs) / len(events), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stages", action="store_true", help="also time the other stages")
    args = parser.parse_args()
    policy = default_policy()
    events = synthetic_events(args.events, args.customers, args.seed)
    states: dict[str, CustomerState] = {}
    results: list[StepResult] = []
    decisions = handoffs = 0
    actions: dict[str, int] = {}
    started = time.perf_counter()
    for event in events:
        result = step(states.get(event.customer_id), event, policy)
        states[event.customer_id] = result.state
        if args.stages:
            results.append(result)
        decisions += len(result.decisions)
        for decision in result.decisions:
            actions[decision.action] = actions.get(decision.action, 0) + 1
        handoffs += len(result.handoffs)
    elapsed = time.perf_counter() - started
    print(
        f"step: {len(events)} events in {elapsed:.2f}s = {len(events) / elapsed:,.0f} events/s "
        f"({decisions} decisions {actions}, {handoffs} handoff packages, {len(states)} customers)"
    )
    if args.stages:
        step_us = round(elapsed / len(events) * 1e6, 2)
        print(json.dumps({"step_us_per_event": step_us, **stages(events, results)}, indent=2))


if __name__ == "__main__":
    main()
