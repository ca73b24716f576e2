"""Synthetic customers with their account snapshot, and the issues they contact support about."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from stream.core.events import AccountEvent
from stream.replay.config import seeded_random

_TIERS: Final[tuple[tuple[str, float, str], ...]] = (
    ("standard", 0.55, "basic"),
    ("plus", 0.25, "plus-monthly"),
    ("premium", 0.15, "premium-annual"),
    ("enterprise", 0.05, "enterprise-annual"),
)
_BOOKING_ALPHABET: Final[str] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(slots=True)
class Customer:
    number: int
    customer_id: str
    email: str
    tier: str
    contract_id: str | None


@dataclass(slots=True)
class Issue:
    """What a contact is about; a return on the same issue counts its contacts up."""

    key: str
    category: str
    booking: str
    first_at: int
    contacts: int = 0


def new_customer(seed: int, number: int, at: int) -> tuple[Customer, AccountEvent]:
    """The `number`-th customer of a replay and the account snapshot it starts with, at `at`."""
    rng = seeded_random(seed, "customer", number)
    customer_id = f"cust-{number:06d}"
    roll = rng.random()
    tier, plan = _TIERS[-1][0], _TIERS[-1][2]
    for name, share, plan_name in _TIERS:
        if roll < share:
            tier, plan = name, plan_name
            break
        roll -= share
    enterprise = tier == "enterprise"
    contract_id = f"ent-{number:06d}" if enterprise else None
    flags = []
    both = rng.random() < 0.03
    if both or rng.random() < 0.03:
        flags.append("disputed_charge")
    if both or rng.random() < 0.04:
        flags.append("recent_negative_review")
    if rng.random() < (0.15 if tier in ("premium", "enterprise") else 0.02):
        flags.append("vip")
    if rng.random() < 0.06:
        flags.append("churn_risk")
    balance = round(rng.uniform(5.0, 400.0), 2) if rng.random() < 0.2 else 0.0
    customer = Customer(number, customer_id, f"c{number}@example.com", tier, contract_id)
    account = AccountEvent(
        event_id=f"acc-{customer_id}-1",
        customer_id=customer_id,
        occurred_at=at,
        tier=tier,
        plan=plan,
        enterprise_contract=enterprise,
        contract_id=contract_id,
        primary_email=customer.email,
        balance=balance,
        currency="USD",
        flags=tuple(flags),
        open_cases=rng.choice((0, 0, 0, 0, 0, 0, 1, 1, 2)),
    )
    return customer, account


def new_issue(rng: random.Random, category: str, at: int) -> Issue:
    """A fresh issue of `category`, keyed by a synthetic booking reference."""
    booking = "".join(rng.choice(_BOOKING_ALPHABET) for _ in range(6))
    return Issue(f"{category}:{booking}", category, booking, at)
