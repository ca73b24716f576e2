"""The signal a customer turn keeps for the next one gives the features its texts give.

`step` keeps on each customer turn the lexicon score its analysis gave (its marker kinds are
kept already), and the next turn's `previous` features come from it instead of a second analysis
(stream/core/turn_model.py, `previous_summary`). Training computes the same features from the
texts, so the shipped weights hold only if both paths agree. They must agree on any history the
state can see: turns folded out of order, old turns cut by the turn cap or by the byte budget,
texts longer than the model reads, a state stored and restored (version 3, or version 2 without
the kept scores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from stream.core import statecodec
from stream.core.events import MessageEvent
from stream.core.markers import TextSignal
from stream.core.state import CustomerState
from stream.core.step import SHIPPED_MODEL, step
from stream.core.turn_model import (
    CONTEXT_GROUPS,
    NO_CONTEXT,
    PREVIOUS_MAX_CHARS,
    TurnContext,
    TurnModel,
    context_features,
)
from stream.testing import T0, make_policy
from tests.properties import searching

# Texts that give markers, repeats of each other (the repeat_question marker of a turn depends on
# which earlier turns are still there), calm turns, and one longer than the turn model analyses
# an earlier turn at, which a turn repeats only when it is read whole.
TEXTS = (
    "the app keeps crashing when I pay",
    "the app keeps crashing when I try to pay",
    "app keeps crashing again when I pay!!",
    "this is useless and ridiculous!!",
    "no",
    "ok thanks, that works",
    "what?",
    "x " * (PREVIOUS_MAX_CHARS // 2) + "the app keeps crashing when I pay ",
)
AI_TEXTS = ("Have you tried restarting it?", "What is your order number?", "I see.")


@dataclass(eq=False)  # hashed by identity, as the turn model is (step caches scores by model)
class BothPaths:
    """Scores with the shipped model, and records each turn's features by both paths."""

    pairs: list[tuple[set[str], set[str]]] = field(default_factory=list)
    carried: int = 0

    def score(self, text: str, signal: TextSignal, context: TurnContext = NO_CONTEXT) -> float:
        from_texts = replace(context, previous_signal=None)
        self.carried += context.previous_signal is not None
        self.pairs.append(
            (
                context_features(text, context, CONTEXT_GROUPS)
                | SHIPPED_MODEL.features(text, signal, context),
                context_features(text, from_texts, CONTEXT_GROUPS)
                | SHIPPED_MODEL.features(text, signal, from_texts),
            )
        )
        return SHIPPED_MODEL.score(text, signal, context)


def as_version_2(stored: bytes) -> bytes:
    """The bytes version 2 wrote for the same state: the same record, turns without `lexicon`."""
    record = json.loads(stored[1:])
    for conv in record.get("conversations", {}).values():
        for turn in conv["turns"]:
            del turn["lexicon"]
    return bytes([2]) + json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


# The cap of turns a conversation keeps, and whether a policy keeps texts longer than the model
# reads earlier turns at.
POLICIES = {
    (cap, long_texts): make_policy(
        {
            "state": {
                "max_turns_per_conversation": cap,
                "max_text_chars": PREVIOUS_MAX_CHARS + 500 if long_texts else PREVIOUS_MAX_CHARS,
            },
            "handoff": {"transcript_turns": min(cap, 10)},
        }
    )
    for cap in (3, 6, 20)
    for long_texts in (False, True)
}

LONG: dict[str, Any] = {"cap": 20, "long_texts": True, "budget": None, "restore": "no"}

turns = st.lists(
    st.tuples(
        st.sampled_from(("customer", "customer", "ai_agent")),
        st.integers(0, len(TEXTS) - 1),
        st.integers(0, 40),  # seconds; out of order when it goes back
    ),
    min_size=1,
    max_size=30,
)


@given(
    history=turns,
    cap=st.sampled_from((3, 6, 20)),
    long_texts=st.booleans(),
    budget=st.sampled_from((None, 1500, 3000)),
    restore=st.sampled_from(("no", "v3", "v2")),
)
# A long turn, and a turn that repeats a long one, each followed by a customer turn.
@example(history=[("customer", 7, 0), ("customer", 4, 1)], **LONG)
@example(history=[("customer", 7, 0), ("customer", 1, 1), ("customer", 4, 2)], **LONG)
@searching(300)
def test_kept_signals_give_the_features_the_texts_give(
    history: list[tuple[str, int, int]],
    cap: int,
    long_texts: bool,
    budget: int | None,
    restore: str,
) -> None:
    policy = POLICIES[cap, long_texts]
    model = BothPaths()
    state: CustomerState | None = None
    for number, (role, index, second) in enumerate(history):
        text = (AI_TEXTS[index % len(AI_TEXTS)] if role == "ai_agent" else TEXTS[index]) * (
            2 if long_texts and index == len(TEXTS) - 1 else 1
        )
        event = message(number, T0 + second * 1000, role, text)
        state = step(state, event, policy, model=_as_model(model)).state
        if budget is not None:
            statecodec.fit(state, budget)
        if restore != "no":
            stored = statecodec.encode(state, 10**9)[0]
            state = statecodec.decode(as_version_2(stored) if restore == "v2" else stored)
    for carried, from_texts in model.pairs:
        assert carried == from_texts
    if restore == "v2":
        assert model.carried == 0


def message(number: int, at: int, role: str, text: str) -> MessageEvent:
    return MessageEvent(
        f"ev-{number}", "c-1", at, "conv-1", message_id=f"m-{number}", role=role, text=text
    )


def _as_model(model: BothPaths) -> TurnModel:
    return model  # type: ignore[return-value]


def test_a_plain_history_hands_on_the_kept_signal_at_every_turn_after_the_first() -> None:
    policy = make_policy()
    model = BothPaths()
    state: CustomerState | None = None
    for number, text in enumerate(TEXTS[:-1]):
        event = message(number, T0 + number, "customer", text)
        state = step(state, event, policy, model=_as_model(model)).state
    assert model.carried == len(TEXTS) - 2
    assert all(carried == from_texts for carried, from_texts in model.pairs)
