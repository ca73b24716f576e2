"""The words of the decision core, each listed once: actions, priorities, triggers, marker kinds.

Every other module (decisions, the policy schema, the triggers, the text markers, the handoff
builder) imports them from here, so adding a trigger or a priority is one edit, and the tuples
below can never disagree with the types, because they are read off the types.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias, get_args

# What a decision asks for, from least to most: the order is the rank.
Action: TypeAlias = Literal["continue", "offer_transfer", "escalate"]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
ACTION_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(ACTIONS)}
# What one trigger hit may ask for: a hit never asks to continue.
HitAction: TypeAlias = Literal["offer_transfer", "escalate"]

# Ticket priority, from lowest to highest: the order is the rank.
Priority: TypeAlias = Literal["low", "normal", "high", "urgent"]
PRIORITIES: Final[tuple[Priority, ...]] = get_args(Priority)
PRIORITY_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(PRIORITIES)}

TriggerName: TypeAlias = Literal[
    "confidence", "sentiment", "explicit_request", "policy_boundary", "repeat_contact"
]
TRIGGER_NAMES: Final[tuple[TriggerName, ...]] = get_args(TriggerName)
CONFIDENCE: Final = "confidence"
SENTIMENT: Final = "sentiment"
EXPLICIT_REQUEST: Final = "explicit_request"
POLICY_BOUNDARY: Final = "policy_boundary"
REPEAT_CONTACT: Final = "repeat_contact"
# Not a policy trigger: the hit of a trigger that could not evaluate, which makes the decision
# fail safe (hold the action, escalate; DESIGN section 8).
TRIGGER_ERROR: Final = "trigger_error"

# Kinds of text marker the signal finds in a customer turn (stream/core/markers.py).
MarkerKind: TypeAlias = Literal[
    "frustration",
    "clarification",
    "hostile_short",
    "human_request",
    "negative_lexicon",
    "repeat_question",
]
MARKER_KINDS: Final[tuple[MarkerKind, ...]] = get_args(MarkerKind)
FRUSTRATION: Final = "frustration"
CLARIFICATION: Final = "clarification"
HOSTILE_SHORT: Final = "hostile_short"
HUMAN_REQUEST: Final = "human_request"
NEGATIVE_LEXICON: Final = "negative_lexicon"
REPEAT_QUESTION: Final = "repeat_question"
