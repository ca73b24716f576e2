"""A bare "no" that answers the AI's yes/no question is an answer, not dissatisfaction.

The turn signal reads a turn alone and scores a curt "No." as dissatisfied; the sentiment rule
knows the AI turn before it and does not count such a turn, neither by its signal nor by an
upstream score. Any other turn counts as before.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.markers import asks_yes_no, is_short_no
from stream.core.policy import Policy
from stream.core.state import Turn
from stream.core.triggers import sentiment
from stream.testing import EventFactory, Run, labelled

T0 = 1_700_000_000_000
HIGH = 0.9
# The shipped policy's operating point for chat.
AT = 0.45
QUESTION = "Your booking is confirmed. Would you like to add travel insurance?"


YES_NO_QUESTIONS = [
    QUESTION,
    "Do you want a receipt?",
    "Does that work for you?",
    "Did you get the email?",
    "Is there anything else I can help with?",
    "Are you travelling with a pet?",
    "Was the charge on your Visa card?",
    "Were you on the 9:10 flight?",
    "Can I help with anything else?",
    "Could you confirm the booking code?",
    "Shall I rebook you?",
    "Should I cancel the old seat?",
    "Will you need a hotel?",
    "May I close this chat?",
    "Have you tried restarting the app?",
    "Has the refund arrived?",
    "Had you booked the seat before?",
    "Want me to text you the gate?",
    "Need anything else?",
    "Any other questions?",
    "Anything else?",
    "Done!  Would you like a receipt?  ",
    "Refund sent. Anything else I can do?\n",
]
NOT_YES_NO_QUESTIONS = [
    "Which payment method are you using?",
    "What time is your flight?",
    "Your flight is on time.",
    # The question is not the last sentence: the customer answers the last one.
    "Would you like insurance? Here are the options.",
    "Is it on time? I checked: it is.",
    # An auxiliary inside a word or mid-sentence does not open a question.
    "Island hoppers love this route?",
    "Tell me which seat you would like?",
    "",
]


@pytest.mark.parametrize(("text", "expected"), labelled(YES_NO_QUESTIONS, NOT_YES_NO_QUESTIONS))
def test_a_yes_no_question_or_not(text: str, expected: bool) -> None:
    assert asks_yes_no(text) is expected


SHORT_NOS = [
    "No.",
    "no",
    "NO",
    "No!",
    "  No.  ",
    "Nope",
    "nah",
    "No thanks",
    "no, thanks.",
    "No thank you.",
    "No, thank you!",
    "no thx",
    "No need.",
    "No, I'm good.",
    "No I’m fine",
    "no, im ok",
    "No, I'm okay.",
    "No, that's all.",
    "No that’s it",
    "no, thats everything",
    "No, that is all.",
    "Not now.",
    "not today",
    "Not really.",
    "Not yet.",
]
NOT_SHORT_NOS = [
    "No!!!",
    "No?",
    "NO. This is ridiculous.",
    "No, I want a refund.",
    "No, the app still crashes",
    "Nooo",
    "not now, I said I want a person",
    "Not good",
    "Yes.",
    "Know what, fine",
    "",
]


@pytest.mark.parametrize(("text", "expected"), labelled(SHORT_NOS, NOT_SHORT_NOS))
def test_a_short_no_or_not(text: str, expected: bool) -> None:
    assert is_short_no(text) is expected


@given(st.text(max_size=200))
def test_answer_checks_never_raise(text: str) -> None:
    assert isinstance(asks_yes_no(text), bool)
    assert isinstance(is_short_no(text), bool)


# --- the sentiment rule ----------------------------------------------------------------------


def ai(n: int, text: str = QUESTION) -> Turn:
    return Turn(f"a{n}", "ai_agent", text, T0 + n)


def customer(
    n: int, text: str = "No.", signal: float | None = HIGH, score: float | None = None
) -> Turn:
    return Turn(f"m{n}", "customer", text, T0 + n, (), False, score, signal=signal)


def rules_of(turns: list[Turn], policy: Policy) -> list[str]:
    return [hit.rule for hit in sentiment.check(turns, policy).hits]


def test_two_no_answers_to_yes_no_questions_do_not_offer(policy: Policy) -> None:
    turns = [ai(1), customer(2), ai(3, "Would you like to choose a seat now?"), customer(4)]
    assert rules_of(turns, policy) == []


def test_no_answers_with_low_upstream_scores_do_not_offer(policy: Policy) -> None:
    turns = [ai(1), customer(2, score=-0.9), ai(3), customer(4, score=-0.9)]
    assert rules_of(turns, policy) == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # The same "No." after a question that yes or no does not answer.
        (ai(1, "Which seat would you like?"), ai(3, "What time suits you?")),
        # Not an answer to the AI: the customer's own earlier turn comes right before it.
        (customer(1, "I need to change my flight", signal=0.1), customer(3, "Hello??", 0.1)),
    ],
)
def test_the_same_no_elsewhere_still_counts(policy: Policy, first: Turn, second: Turn) -> None:
    turns = [first, customer(2), second, customer(4)]
    assert rules_of(turns, policy) == ["sentiment.turns"]
    (hit,) = sentiment.check(turns, policy).hits
    assert [e.message_id for e in hit.evidence] == ["m2", "m4"]


def test_a_no_as_the_first_turn_still_counts(policy: Policy) -> None:
    # Nothing came before the first "No.": it answers nothing.
    turns = [customer(1), customer(2, "This is ridiculous")]
    assert rules_of(turns, policy) == ["sentiment.turns"]


def test_a_complaint_after_a_yes_no_question_still_counts(policy: Policy) -> None:
    turns = [ai(1), customer(2, "No, this is ridiculous"), ai(3), customer(4, "NO!!!")]
    (hit,) = sentiment.check(turns, policy).hits
    assert hit.rule == "sentiment.turns"
    assert [e.message_id for e in hit.evidence] == ["m2", "m4"]


def test_an_answer_does_not_hide_the_dissatisfied_turns_around_it(policy: Policy) -> None:
    turns = [
        customer(1, "This is ridiculous"),
        ai(2),
        customer(3),
        customer(4, "Still waiting for my refund", score=-0.7),
    ]
    (hit,) = sentiment.check(turns, policy).hits
    assert hit.rule == "sentiment.turns"
    assert [e.message_id for e in hit.evidence] == ["m1", "m4"]
    assert hit.reason.startswith("2 of the customer's last 3 turns")


def test_an_answer_breaks_a_run_of_low_scores(policy: Policy) -> None:
    # Two consecutive low upstream scores offer a transfer; an answer among them is not one.
    low = [customer(1, "This is bad", signal=0.1, score=-0.7)]
    scored = low + [customer(2, "Awful", signal=0.1, score=-0.7)]
    assert rules_of(scored, policy) == ["sentiment.turns", "sentiment.score"]
    answered = low + [ai(2), customer(3, signal=0.1, score=-0.7)]
    assert rules_of(answered, policy) == []


def test_ai_turns_do_not_count_as_customer_turns(policy: Policy) -> None:
    # The window is the last 3 customer turns, however many AI turns lie between them.
    turns = [customer(1, "Awful"), ai(2, "Ok."), ai(3, "Ok."), ai(4, "Ok."), customer(5, "Bad")]
    (hit,) = sentiment.check(turns, policy).hits
    assert hit.reason.startswith("2 of the customer's last 2 turns")


def test_only_ai_turns_decide_nothing(policy: Policy) -> None:
    assert sentiment.check([ai(1), ai(2)], policy).hits == ()


# --- through the decision core, with the shipped turn signal ---------------------------------


def test_step_two_bare_no_answers_continue(run: Run, events: EventFactory) -> None:
    decisions, _ = run.feed(
        events.ai(QUESTION),
        events.customer("No."),
        events.ai("Would you like to choose a seat now?"),
        events.customer("No."),
    )
    assert [d.action for d in decisions] == ["continue"] * 4
    # The signal still reads each "No." alone as curt; only the rule knows it answered.
    turns = run.state.conversations["conv-1"].turns
    assert [t.signal is not None and t.signal >= AT for t in turns if t.role == "customer"] == [
        True,
        True,
    ]


def test_step_two_bare_no_without_questions_offer(run: Run, events: EventFactory) -> None:
    decisions, _ = run.feed(
        events.ai("Your booking is confirmed."),
        events.customer("No."),
        events.ai("Seats can be chosen at check-in."),
        events.customer("No."),
    )
    assert [d.action for d in decisions] == ["continue"] * 3 + ["offer_transfer"]
    assert [h.rule for h in decisions[-1].triggers] == ["sentiment.turns"]


def test_step_a_score_for_an_answer_does_not_offer(run: Run, events: EventFactory) -> None:
    # A late upstream score re-runs the rule: the answer stays an answer.
    first, second = events.customer("No."), events.customer("No.")
    run.feed(events.ai(QUESTION), first, events.ai(QUESTION), second)
    decisions, _ = run.feed(
        events.sentiment(first.message_id, -0.9, at=second.occurred_at + 1),
        events.sentiment(second.message_id, -0.9, at=second.occurred_at + 2),
    )
    assert all(d.action == "continue" for d in decisions)
