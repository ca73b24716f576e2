"""What the live calibration agent keeps per customer to judge closed conversations, bounded.

`remember(memory, item, settings, limits)` folds one decision, closed contact or outcome into the
customer's memory and returns the judgements that changed: the first judgement of a conversation
once it has an outcome, and a new one whenever a later fact changes it (a reopen turns "ok
without" into "missed escalation"). The same facts in any order give the same last judgement, so
the worker, reading three topics side by side, ends where the batch judge ends.

The memory is bounded: a conversation is forgotten once the customer's event-time watermark has
passed its judging horizon (its close, or first outcome, plus the reopen window plus lateness),
or, never closed, its last fact plus the idle bound plus that horizon; and at most
`max_conversations` are kept, the least recently active forgotten first. An outcome that arrives
after its conversation was forgotten is judged on what it alone says (the judgement names the
missing decision), as the batch judge does with an outcome for an unknown conversation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from stream.core.decision import Decision
from stream.core.events import ContactEvent, OutcomeEvent
from stream.core.judge import (
    JudgeFacts,
    Judgement,
    JudgeSettings,
    judge,
    note_close,
    note_decision,
    note_outcome,
)
from stream.core.records import Record


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    """How long and how much the agent remembers; from the settings and the policy."""

    horizon_ms: int
    idle_ms: int
    max_conversations: int = 200


@dataclass(slots=True)
class JudgingMemory(Record):
    """One customer's conversations under judgement, and what was last published for each."""

    customer_id: str
    watermark: int = -1
    conversations: dict[str, JudgeFacts] = field(default_factory=dict)
    # A digest of the last judgement published per conversation, so an unchanged one is not
    # published again.
    published: dict[str, str] = field(default_factory=dict)


def _fingerprint(judged: Judgement) -> str:
    record = judged.to_record()
    return hashlib.blake2b(repr(sorted(record.items())).encode(), digest_size=8).hexdigest()


def _forget(memory: JudgingMemory, limits: MemoryLimits) -> None:
    mark = memory.watermark
    stale = []
    for conversation_id, facts in memory.conversations.items():
        start = facts.closed_at if facts.closed_at is not None else facts.first_outcome_at
        if start is not None:
            if start + limits.horizon_ms < mark:
                stale.append(conversation_id)
        elif facts.last_at + limits.idle_ms + limits.horizon_ms < mark:
            stale.append(conversation_id)
    excess = len(memory.conversations) - len(stale) - limits.max_conversations
    if excess > 0:
        rest = sorted(
            (f.last_at, c) for c, f in memory.conversations.items() if c not in set(stale)
        )
        stale.extend(c for _, c in rest[:excess])
    for conversation_id in stale:
        del memory.conversations[conversation_id]
        memory.published.pop(conversation_id, None)


def remember(
    memory: JudgingMemory | None,
    item: Decision | ContactEvent | OutcomeEvent,
    settings: JudgeSettings,
    limits: MemoryLimits,
) -> tuple[JudgingMemory, list[Judgement]]:
    """Fold `item` into the customer's memory; the judgements to publish (module docstring)."""
    if memory is None:
        memory = JudgingMemory(item.customer_id)
    conversation_id = item.conversation_id
    if conversation_id is None:
        return memory, []
    if isinstance(item, ContactEvent) and item.action != "closed":
        return memory, []
    at = item.occurred_at
    memory.watermark = max(memory.watermark, at)
    facts = memory.conversations.get(conversation_id)
    if facts is None:
        facts = memory.conversations[conversation_id] = JudgeFacts(
            conversation_id, item.customer_id
        )
    if isinstance(item, Decision):
        note_decision(facts, item)
    elif isinstance(item, ContactEvent):
        note_close(facts, at)
    else:
        note_outcome(facts, item)
    out: list[Judgement] = []
    if facts.outcome is not None:
        judged = judge(facts, settings)
        mark = _fingerprint(judged)
        if memory.published.get(conversation_id) != mark:
            memory.published[conversation_id] = mark
            out.append(judged)
    _forget(memory, limits)
    return memory, out
