"""The context a customer turn is scored in: which earlier turns the turn model may see.

A wrong context changes the learned signal silently (a later turn read as "before", the wrong AI
question, a first turn counted as a late one), so each rule of `_context` is pinned here, and a
stand-in model records what `step` hands it.
"""

from __future__ import annotations

from typing import cast

from stream.core.events import Event
from stream.core.markers import TextSignal
from stream.core.policy import Policy
from stream.core.state import ConversationState, Turn
from stream.core.step import _context, step
from stream.core.turn_model import CONTEXT_TURNS, NO_CONTEXT, TurnContext, TurnModel
from stream.testing import T0, EventFactory, make_policy


def conversation(
    *turns: tuple[str, str, int], customer_turns: int | None = None
) -> ConversationState:
    """A conversation holding `turns` (role, text, time) in order of time; `customer_turns` as
    folded unless given (a state stored before the count existed has 0)."""
    conv = ConversationState.opened("conv-1", T0)
    conv.turns = [Turn(f"m{i}", role, text, at) for i, (role, text, at) in enumerate(turns)]
    conv.customer_turns = (
        sum(role == "customer" for role, _, _ in turns)
        if customer_turns is None
        else customer_turns
    )
    return conv


def test_a_first_turn_has_no_context() -> None:
    assert _context(conversation(), T0) == TurnContext("", (), 0)


def test_the_last_ai_turn_before_and_the_customer_turns_before_in_order() -> None:
    conv = conversation(
        ("ai_agent", "Hello, how can I help?", T0),
        ("customer", "my card was charged twice", T0 + 1),
        ("ai_agent", "Have you checked the statement?", T0 + 2),
        ("human_agent", "I am taking over", T0 + 3),
        ("customer", "yes I did", T0 + 4),
    )
    assert _context(conv, T0 + 5) == TurnContext(
        "Have you checked the statement?", ("my card was charged twice", "yes I did"), 2
    )


def test_a_turn_at_the_same_millisecond_is_before() -> None:
    conv = conversation(("ai_agent", "Anything else?", T0), ("customer", "no", T0))
    assert _context(conv, T0) == TurnContext("Anything else?", ("no",), 1)


def test_turns_folded_late_with_a_later_time_are_not_before() -> None:
    # Folded out of order: the state already holds an AI and a customer turn from after `at`.
    conv = conversation(
        ("customer", "first", T0),
        ("ai_agent", "Did that help?", T0 + 10),
        ("customer", "later one", T0 + 20),
    )
    assert _context(conv, T0 + 5) == TurnContext("", ("first",), 1)


def test_only_later_customer_turns_come_off_the_count() -> None:
    # 5 customer turns folded, the state keeps 3; two kept customer turns and an AI turn are later.
    conv = conversation(
        ("customer", "third", T0 + 3),
        ("ai_agent", "Is that all?", T0 + 9),
        ("customer", "fourth", T0 + 9),
        ("customer", "fifth", T0 + 10),
        customer_turns=5,
    )
    assert _context(conv, T0 + 5) == TurnContext("", ("third",), 3)


def test_the_count_survives_the_cut_of_old_turns() -> None:
    conv = conversation(("customer", "kept", T0 + 8), customer_turns=7)
    assert _context(conv, T0 + 9).earlier_turns == 7


def test_a_state_without_the_count_counts_the_turns_it_keeps() -> None:
    # A conversation stored before `customer_turns` existed reads it as 0.
    conv = conversation(("customer", "a", T0), ("customer", "b", T0 + 1), customer_turns=0)
    assert _context(conv, T0 + 2).earlier_turns == 2


def test_only_the_last_context_turns_customer_turns_are_kept() -> None:
    texts = [f"turn {i}" for i in range(CONTEXT_TURNS + 2)]
    conv = conversation(*(("customer", text, T0 + i) for i, text in enumerate(texts)))
    context = _context(conv, T0 + 100)
    assert context.previous_customer == tuple(texts[-CONTEXT_TURNS:])
    assert context.earlier_turns == len(texts)


class RecordingModel:
    """Records the context of every turn it scores; scores every turn 0.1 (calm)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, TurnContext]] = []

    def score(self, text: str, signal: TextSignal, context: TurnContext = NO_CONTEXT) -> float:
        self.seen.append((text, context))
        return 0.1


def run(policy: Policy, *events: Event) -> RecordingModel:
    model = RecordingModel()
    state = None
    for event in events:
        state = step(state, event, policy, cast(TurnModel, model)).state
    return model


def test_step_scores_each_customer_turn_in_its_context(events: EventFactory) -> None:
    model = run(
        make_policy(),
        events.customer("where is my refund", at=T0),
        events.ai("Did you get an email from us?", at=T0 + 1),
        events.customer("no", at=T0 + 2),
    )
    assert model.seen == [
        ("where is my refund", TurnContext("", (), 0)),
        ("no", TurnContext("Did you get an email from us?", ("where is my refund",), 1)),
    ]
