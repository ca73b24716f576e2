"""Several trigger hits on one event become one action, one priority and one customer message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.core.decision import AccountSnapshot, TriggerHit
from stream.core.policy import Policy
from stream.core.vocabulary import ACTION_RANK, ACTIONS, PRIORITIES, PRIORITY_RANK, Action, Priority


@dataclass(frozen=True, slots=True)
class Combined:
    action: Action
    priority: Priority
    hits: tuple[TriggerHit, ...]
    customer_message: str | None


CONTINUE = Combined("continue", "low", (), None)


def order_hits(hits: Sequence[TriggerHit], policy: Policy) -> tuple[TriggerHit, ...]:
    """Policy trigger order first, then the rule name, so the same hits always list alike."""
    order = policy.compiled.trigger_order
    return tuple(sorted(hits, key=lambda hit: (order.get(hit.trigger, len(order)), hit.rule)))


def priority_of(
    hits: Sequence[TriggerHit], policy: Policy, account: AccountSnapshot | None
) -> Priority:
    """Highest hit priority, raised one level for listed tiers/flags or many distinct triggers."""
    compiled = policy.compiled
    by_trigger = compiled.trigger_priority
    rank = 0
    for hit in hits:
        hit_rank = (
            PRIORITY_RANK[hit.priority]
            if hit.priority is not None
            else by_trigger.get(hit.trigger, 1)
        )
        rank = max(rank, hit_rank)
    raise_it = len({hit.trigger for hit in hits}) >= policy.priorities.raise_when_triggers_at_least
    if account is not None and not raise_it:
        raise_it = account.tier in compiled.raise_tiers or any(
            flag in compiled.raise_flags for flag in account.flags
        )
    if raise_it:
        rank = min(rank + 1, len(PRIORITIES) - 1)
    return PRIORITIES[rank]


def combine(
    hits: Sequence[TriggerHit],
    policy: Policy,
    account: AccountSnapshot | None,
    offered: bool,
) -> Combined:
    """One action for all hits: escalate beats offer_transfer beats continue.

    A transfer is offered once per conversation: once `offered`, hits that only ask for an offer
    leave the conversation with the AI agent (continue, no hits) instead of repeating the offer.
    """
    if not hits:
        return CONTINUE
    rank = max(ACTION_RANK[hit.action] for hit in hits)
    action = ACTIONS[rank]
    if action == "continue" or (action == "offer_transfer" and offered):
        return CONTINUE
    ordered = order_hits(hits, policy)
    messages = policy.messages
    if action == "escalate":
        boundary = [hit for hit in ordered if hit.trigger == "policy_boundary"]
        overrides = [hit.message for hit in ordered if hit.message and hit.action == "escalate"]
        if overrides:
            message = overrides[0]
        elif boundary:
            message = messages.policy_boundary
        else:
            message = messages.escalate
    else:
        message = messages.offer_transfer
    return Combined(action, priority_of(ordered, policy, account), ordered, message)
