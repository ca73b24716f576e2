"""The context a customer turn is scored in: which earlier turns the turn model may see.

A wrong context changes the learned signal silently (a later turn read as "before", the wrong AI
question, a first turn counted as a late one), so each rule of `_context` is pinned here, and a
stand-in model records what `step` hands it.
"""

from __future__ import annotations

from typing import cast

import pytest

from stream.core import step as step_module
from stream.core.events import Event
from stream.core.markers import TextSignal, analyze_turn
from stream.core.policy import Policy
from stream.core.state import ConversationState, CustomerState, Turn
from stream.core.step import _context, step
from stream.core.turn_model import (
    CONTEXT_TURNS,
    NO_CONTEXT,
    PREVIOUS_MAX_CHARS,
    REPEAT_LOOKBACK,
    TurnContext,
    TurnModel,
)
from stream.testing import T0, EventFactory, Run, make_policy


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
    first = analyze_turn("where is my refund", ())
    assert model.seen == [
        ("where is my refund", TurnContext("", (), 0)),
        (
            "no",
            TurnContext(
                "Did you get an email from us?",
                ("where is my refund",),
                1,
                (tuple(m.kind for m in first.markers), first.score),
            ),
        ),
    ]


# --- the signal kept on the customer's last turn (`_carried`) ------------------------------------


def kept(conv: ConversationState, index: int, lexicon: float, *kinds: str) -> None:
    """Give turn `index` the markers and lexicon score its analysis would have left."""
    turn = conv.turns[index]
    turn.markers = tuple((kind, f"text of {kind}") for kind in kinds)
    turn.lexicon = lexicon


def customers(count: int, start: int = 0) -> list[tuple[str, str, int]]:
    return [("customer", f"turn {i}", T0 + i) for i in range(start, start + count)]


def test_the_last_customer_turn_hands_on_its_kept_marker_kinds_and_score() -> None:
    conv = conversation(
        ("customer", "an earlier one", T0),
        ("customer", "this is useless", T0 + 1),
        ("ai_agent", "Sorry to hear that.", T0 + 2),
    )
    kept(conv, 0, 0.25)
    kept(conv, 1, -0.5, "frustration", "negative_lexicon")
    assert _context(conv, T0 + 3).previous_signal == (("frustration", "negative_lexicon"), -0.5)


def test_a_turn_with_no_kept_score_hands_on_nothing() -> None:
    conv = conversation(("customer", "kept", T0), ("customer", "not kept", T0 + 1))
    kept(conv, 0, -0.5, "frustration")
    assert _context(conv, T0 + 2).previous_signal is None
    assert _context(conversation(), T0).previous_signal is None


def test_the_last_customer_turn_is_the_last_one_before_the_turn() -> None:
    # Folded out of order: the state holds a customer turn from after `at`, and it is whole.
    conv = conversation(("customer", "before", T0), ("customer", "after", T0 + 20))
    kept(conv, 0, 0.5, "clarification")
    kept(conv, 1, -0.5, "frustration")
    assert _context(conv, T0 + 5).previous_signal == (("clarification",), 0.5)


def test_a_conversation_cut_of_old_customer_turns_hands_on_only_a_full_lookback() -> None:
    # The state cut two of the customer turns it folded: the last turn was compared with turns
    # that may be gone, unless REPEAT_LOOKBACK turns are still before it.
    short = conversation(*customers(REPEAT_LOOKBACK), customer_turns=REPEAT_LOOKBACK + 2)
    kept(short, REPEAT_LOOKBACK - 1, -0.5, "frustration")
    assert _context(short, T0 + 100).previous_signal is None
    full = conversation(*customers(REPEAT_LOOKBACK + 1), customer_turns=REPEAT_LOOKBACK + 3)
    kept(full, REPEAT_LOOKBACK, -0.5, "frustration")
    assert _context(full, T0 + 100).previous_signal == (("frustration",), -0.5)


def test_a_whole_conversation_hands_on_a_short_lookback() -> None:
    # Every customer turn folded is still held, the later ones too: nothing was cut.
    conv = conversation(*customers(2), ("customer", "later", T0 + 50))
    kept(conv, 1, 0.125)
    assert _context(conv, T0 + 10).previous_signal == ((), 0.125)
    # One fewer held than counted: a cut, with 1 turn before the last one.
    conv.customer_turns += 1
    assert _context(conv, T0 + 10).previous_signal is None


def lexicons(state: CustomerState | None) -> list[float | None]:
    assert state is not None
    return [turn.lexicon for turn in state.conversations["conv-1"].turns]


def test_step_keeps_each_customer_turns_lexicon_score(events: EventFactory) -> None:
    run = Run(make_policy())
    run.feed(
        events.customer("this is useless, where is my refund", at=T0),
        events.ai("Did you get an email from us?", at=T0 + 1),
        events.customer("no I did not", at=T0 + 2),
    )
    earlier = ("this is useless, where is my refund",)
    assert lexicons(run.state) == [
        analyze_turn(earlier[0], ()).score,
        None,
        analyze_turn("no I did not", earlier).score,
    ]


def test_a_late_customer_turn_clears_what_the_customer_turns_after_it_keep(
    events: EventFactory,
) -> None:
    run = Run(make_policy())
    run.feed(
        events.customer("first", at=T0),
        events.customer("third", at=T0 + 30),
        events.ai("Anything else?", at=T0 + 40),
        events.customer("fourth", at=T0 + 50),
    )
    assert None not in lexicons(run.state)[:2]
    run.feed(events.ai("late AI turn", at=T0 + 5))  # an AI turn folded late changes nothing
    assert lexicons(run.state) == [
        analyze_turn("first", ()).score,
        None,
        analyze_turn("third", ("first",)).score,
        None,
        analyze_turn("fourth", ("first", "third")).score,
    ]
    run.feed(events.customer("second", at=T0 + 10))
    assert lexicons(run.state) == [
        analyze_turn("first", ()).score,
        None,
        analyze_turn("second", ("first",)).score,
        None,
        None,
        None,
    ]


def test_a_text_longer_than_the_model_reads_keeps_no_score(events: EventFactory) -> None:
    # A policy may keep texts longer than the PREVIOUS_MAX_CHARS the turn model analyses.
    run = Run(make_policy({"state": {"max_text_chars": PREVIOUS_MAX_CHARS + 100}}))
    at_most = "a" * PREVIOUS_MAX_CHARS
    longer = "b" * (PREVIOUS_MAX_CHARS + 1)
    run.feed(events.customer(at_most, at=T0), events.customer("after it", at=T0 + 1))
    assert None not in lexicons(run.state)
    run.feed(events.customer(longer, at=T0 + 2), events.customer("after the long one", at=T0 + 3))
    assert lexicons(run.state)[2:] == [None, None]
    # Compared with REPEAT_LOOKBACK turns: once the long one is further back, a score is kept.
    more = [f"more {i}" for i in range(REPEAT_LOOKBACK)]
    run.feed(*(events.customer(text, at=T0 + 4 + i) for i, text in enumerate(more)))
    assert lexicons(run.state)[-2:] == [
        None,
        analyze_turn(more[-1], ("after the long one", *more[:-1])).score,
    ]


def test_a_turn_whose_analysis_or_score_failed_keeps_no_score(
    events: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(make_policy())
    run.feed(events.customer("fine", at=T0))
    monkeypatch.setattr(step_module, "analyze_turn", broken)
    run.feed(events.customer("analysis fails", at=T0 + 1))
    monkeypatch.undo()
    monkeypatch.setattr(step_module, "_turn_signal", broken)
    run.feed(events.customer("score fails", at=T0 + 2))
    assert lexicons(run.state) == [analyze_turn("fine", ()).score, None, None]


def broken(*args: object) -> object:
    raise RuntimeError("broken on purpose")
