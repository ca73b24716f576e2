"""Events per second of `step` alone, on a deterministic synthetic mix of all five event types.

Usage: .venv/bin/python bench/step_bench.py [--events N] [--customers N] [--seed N]

The mix resembles a support stream: mostly messages (customer, AI and some human-agent turns),
sentiment scores for customer turns, contacts opening and closing conversations, occasional
account snapshots and ticketing outcomes. States live in a dict, as in the backtest; no
serialisation is measured.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.core.events import (  # noqa: E402
    AccountEvent,
    ContactEvent,
    Event,
    MessageEvent,
    OutcomeEvent,
    ProposedAction,
    SentimentEvent,
)
from stream.core.policy import default_policy  # noqa: E402
from stream.core.state import CustomerState  # noqa: E402
from stream.core.step import step  # noqa: E402

CUSTOMER_TEXTS = [
    "Hi, I was charged twice for my last invoice, can you check?",
    "Where is my order? It was supposed to arrive yesterday.",
    "ok thanks",
    "This is ridiculous, I already told you the order number!!!",
    "what do you mean?",
    "Can I change the email on my account please",
    "I want to speak to a real person",
    "The app keeps crashing when I open settings",
    "Still waiting for my refund, it has been two weeks",
    "yes that's the one",
]
AI_TEXTS = [
    "I can help with that. Could you confirm the order number?",
    "I've found your invoice. The second charge is a pending authorisation.",
    "I can issue a refund for that amount.",
    "Here is how to reset your settings.",
]
ACTIONS = [
    None,
    ProposedAction("answer", "informational"),
    ProposedAction("lookup", "informational"),
    ProposedAction("refund", "financial", 40.0, "USD", "inv-1"),
    ProposedAction("refund", "financial", 250.0, "USD", "inv-2"),
    ProposedAction("account_email_change", "account_change", None, None, "new@example.com"),
]
CATEGORIES = ["billing", "shipping", "technical", "account"]


def synthetic_events(count: int, customers: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    now = 1_700_000_000_000
    conversation: dict[int, int] = {}
    for index in range(count):
        now += rng.randint(50, 5_000)
        cust = rng.randrange(customers)
        cid = f"cust-{cust}"
        conv_no = conversation.setdefault(cust, 0)
        conv = f"{cid}-conv-{conv_no}"
        eid = f"e{index}"
        roll = rng.random()
        at = now - (rng.randint(0, 60_000) if rng.random() < 0.05 else 0)  # some out of order
        if roll < 0.36:
            events.append(
                MessageEvent(
                    eid,
                    cid,
                    at,
                    conv,
                    f"m{index}",
                    "customer",
                    rng.choice(CUSTOMER_TEXTS),
                    category=rng.choice(CATEGORIES),
                )
            )
        elif roll < 0.69:
            action = rng.choice(ACTIONS)
            events.append(
                MessageEvent(
                    eid,
                    cid,
                    at,
                    conv,
                    f"m{index}",
                    "ai_agent",
                    rng.choice(AI_TEXTS),
                    intent="billing_question" if action is None else action.type,
                    intent_confidence=round(rng.uniform(0.4, 1.0), 3),
                    proposed_action=action,
                )
            )
        elif roll < 0.74:
            # A person has taken over; from here the conversation gets no more AI decisions.
            events.append(
                MessageEvent(
                    eid, cid, at, conv, f"m{index}", "human_agent", "Hi, I'm Sam from support."
                )
            )
        elif roll < 0.86:
            events.append(
                SentimentEvent(
                    eid, cid, at, conv, f"m{index - 1}", round(rng.uniform(-1.0, 1.0), 3)
                )
            )
        elif roll < 0.93:
            action = rng.choice(("opened", "opened", "reopened", "closed"))
            if action == "closed":
                conversation[cust] = conv_no + 1
            events.append(
                ContactEvent(
                    eid,
                    cid,
                    at,
                    f"ct{index}",
                    conv,
                    action,
                    f"billing:inv-{rng.randrange(3)}",
                    rng.choice(CATEGORIES),
                )
            )
        elif roll < 0.97:
            flags = tuple(
                f
                for f in ("disputed_charge", "recent_negative_review", "vip")
                if rng.random() < 0.2
            )
            events.append(
                AccountEvent(
                    eid,
                    cid,
                    at,
                    tier=rng.choice(("standard", "pro", "enterprise")),
                    primary_email=f"{cid}@example.com",
                    flags=flags,
                    enterprise_contract=rng.random() < 0.1,
                )
            )
        else:
            conversation[cust] = conv_no + 1
            events.append(OutcomeEvent(eid, cid, at, f"t{index}", conv, resolved_by="human"))
    return events


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
