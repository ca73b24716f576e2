"""Tests for the per-turn text signal: marker kinds, human requests, repeats, score, verdict."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.markers import (
    CLARIFICATION,
    FRUSTRATION,
    HOSTILE_SHORT,
    HUMAN_REQUEST,
    MARKER_KINDS,
    NEGATIVE_LEXICON,
    REPEAT_QUESTION,
    Marker,
    TextSignal,
    analyze,
    analyze_turn,
)
from stream.signals import SignalsInputError, run_signals


def kinds(signal: TextSignal) -> set[str]:
    return {m.kind for m in signal.markers}


@dataclass(frozen=True)
class Reading:
    """What the analysis of one text must find (`has`), must not find (`lacks`), and, where set,
    its verdict, its human request and the least score."""

    has: frozenset[str] = frozenset()
    lacks: frozenset[str] = frozenset()
    negative: bool | None = None
    human_request: bool | None = None
    score_at_least: float | None = None


FRUSTRATED = [
    "This is ridiculous, my order is a week late.",
    "Honestly this is unacceptable.",
    "Worst support I have ever dealt with",
    "I am fed up with this.",
    "This is so frustrating, the app logs me out every time.",
    "terrible service from start to finish",
    "What a waste of time this chat is",
    "Still waiting for the refund you promised",
    "The replacement is still not here",
    "It crashed again!!",
    "No one is helping me here",
    "this assistant is useless",
    "Your support is a joke",
    "I spent 2 hours on hold yesterday",
    "WHY IS MY ACCOUNT STILL LOCKED",
    "where is my package!!!",
    "f*** this app",
    "wtf is going on with my bill",
    "been waiting for over an hour",
    "I was charged twice, again!!",
]
ASKING_TO_CLARIFY = [
    "I already told you my order number",
    "As I said, the package never arrived",
    "what do you mean by pending",
    "That's not what I asked",
    "You're not listening to me",
    "I don't understand your answer",
    "Please read my message before replying",
    "again?",
    "How many times do I have to say it",
    "You didn't answer my question",
    "what?",
]
SHORT_AND_HOSTILE = [
    "no.",
    "Useless",
    "whatever",
    "forget it",
    "are you serious?",
    "??",
    "Nope",
    "ugh",
    "wtf",
]
SHORT_AND_POLITE = [
    "thanks!",
    "Thank you so much!",
    "ok got it",
    "yes please",
    "no thanks",
    "perfect, that worked",
    "great, thanks",
    "sounds good",
    "THANK YOU SO MUCH!!!",
]
SHORT_NOT_HOSTILE_IN_FORM = [
    "I was charged twice",  # a short problem report, not hostile in form
    "what do you mean",  # a short clarification, not hostile in form
    "my app keeps crashing",
]
ASKING_FOR_A_PERSON = [
    "can I talk to a real person",
    "Get me a human",
    "I want to speak to an agent",
    "representative please",
    "call me",
    "Please call me back on my mobile",
    "transfer me to a supervisor",
    "I need a manager now",
    "Is there a human I can talk to?",
    "let me speak with someone from billing",
    "can I get a live agent",
]
NOT_ASKING_FOR_A_PERSON = [
    "I'm not a human being?",
    "I don't want to talk to a person, just fix it",
    "no need to speak to an agent, the bot is fine",
    "don't call me, email is better",
    "call me crazy but I like the new app",
    "the agent at the counter was nice",
    "my manager approved the purchase",
    "Human error on my side, sorry",
    "I am a real person, not a bot",
]
NEUTRAL_OR_POSITIVE = [
    "Hi, I'd like to change my delivery address",
    "What time do you open tomorrow?",
    "Can you send the invoice to my email?",
    "The new dashboard looks great, thank you",
]
READINGS = {
    "frustration": (FRUSTRATED, Reading(has=frozenset({FRUSTRATION}), negative=True)),
    "clarification": (ASKING_TO_CLARIFY, Reading(has=frozenset({CLARIFICATION}), negative=True)),
    "short_hostile": (SHORT_AND_HOSTILE, Reading(has=frozenset({HOSTILE_SHORT}), negative=True)),
    "short_polite": (
        SHORT_AND_POLITE,
        Reading(lacks=frozenset({HOSTILE_SHORT}), negative=False, score_at_least=0.0),
    ),
    "short_not_hostile": (SHORT_NOT_HOSTILE_IN_FORM, Reading(lacks=frozenset({HOSTILE_SHORT}))),
    "human_request": (
        ASKING_FOR_A_PERSON,
        Reading(has=frozenset({HUMAN_REQUEST}), human_request=True),
    ),
    "no_human_request": (
        NOT_ASKING_FOR_A_PERSON,
        Reading(lacks=frozenset({HUMAN_REQUEST}), human_request=False),
    ),
    "neutral": (NEUTRAL_OR_POSITIVE, Reading(lacks=frozenset(MARKER_KINDS), negative=False)),
}


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        pytest.param(text, reading, id=f"{name}-{i}")
        for name, (texts, reading) in READINGS.items()
        for i, text in enumerate(texts)
    ],
)
def test_a_text_reads_as_expected(text: str, reading: Reading) -> None:
    signal = analyze(text)
    found = kinds(signal)
    assert reading.has <= found, found
    assert not reading.lacks & found, found
    if reading.negative is not None:
        assert signal.negative is reading.negative
    if reading.human_request is not None:
        assert signal.human_request is reading.human_request
    if reading.score_at_least is not None:
        assert signal.score >= reading.score_at_least


def test_human_request_alone_is_not_negative() -> None:
    # An explicit ask is its own trigger; the sentiment verdict does not count it again.
    signal = analyze("could you call me back please")
    assert signal.human_request
    assert not signal.negative


@pytest.mark.parametrize(
    ("text", "previous", "repeated"),
    [
        (
            "Where is my refund for order 1234?",
            ["Where is my refund for order 1234", "hello"],
            True,
        ),
        (
            "I want to know where my refund for order 1234 is",
            ["where is the refund for order 1234"],
            True,
        ),
        ("Where is my refund for order 1234?", ["Can you change my delivery address?"], False),
        ("where is it?", ["where is it?"], False),  # too short to call a repeat
        ("Where is my refund for order 1234?", [], False),
    ],
)
def test_repeat_question(text: str, previous: list[str], repeated: bool) -> None:
    signal = analyze_turn(text, previous)
    assert (REPEAT_QUESTION in kinds(signal)) is repeated
    if repeated:
        assert signal.negative


def test_repeat_question_only_through_analyze_turn() -> None:
    assert REPEAT_QUESTION not in kinds(analyze("Where is my refund for order 1234?"))


def test_analyze_turn_without_history_equals_analyze() -> None:
    text = "still not working, this is ridiculous"
    assert analyze_turn(text, []) == analyze(text)


def test_negative_lexicon_marker() -> None:
    signal = analyze("the update is bad and the screen is wrong")
    assert NEGATIVE_LEXICON in kinds(signal)
    assert signal.negative


def test_profanity_in_praise_is_not_frustration() -> None:
    assert not analyze("damn good service, thank you").negative


def test_score_orders_mild_below_strong() -> None:
    mild = analyze("my order is late")
    strong = analyze("my order is late again!!! this is ridiculous, worst service ever")
    assert -1.0 <= strong.score < mild.score < 0.0
    assert strong.score <= -0.6


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty(text: str) -> None:
    assert analyze(text) == TextSignal(markers=(), score=0.0, negative=False, human_request=False)


def test_markers_are_known_kinds_and_bounded() -> None:
    signal = analyze("call me " * 500)
    assert len(signal.markers) <= 32
    assert all(m.kind in MARKER_KINDS for m in signal.markers)


def test_deterministic() -> None:
    text = "I ALREADY TOLD YOU this is ridiculous!!! get me a manager"
    first = analyze_turn(text, ["I already told you this is ridiculous, get me a manager"])
    for _ in range(5):
        again = analyze_turn(text, ["I already told you this is ridiculous, get me a manager"])
        assert again == first
    assert isinstance(first.markers[0], Marker)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_analyze_never_raises_and_score_in_bounds(text: str) -> None:
    signal = analyze(text)
    assert -1.0 <= signal.score <= 1.0
    assert all(m.kind in MARKER_KINDS for m in signal.markers)
    if signal.human_request:
        assert HUMAN_REQUEST in kinds(signal)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200), st.lists(st.text(max_size=200), max_size=4))
def test_analyze_turn_never_raises(text: str, previous: list[str]) -> None:
    assert -1.0 <= analyze_turn(text, previous).score <= 1.0


# --- run_signals (the `escalation signals` command) ---------------------------------------------


def test_run_signals_writes_one_line_per_record(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": 1, "text": "this is ridiculous"}\n\n{"id": "b", "text": "thanks!"}\n',
        encoding="utf-8",
    )
    out = io.StringIO()
    assert run_signals(source, out) == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["id"] for line in lines] == [1, "b"]
    assert lines[0]["negative"] is True
    assert {"kind": "frustration", "text": "ridiculous"} in lines[0]["markers"]
    # The learned signal: the complaint scores well above the thanks
    assert lines[0]["dissatisfaction"] > 0.5 > lines[1]["dissatisfaction"]
    assert lines[1] == {
        "id": "b",
        "dissatisfaction": lines[1]["dissatisfaction"],
        "negative": False,
        "score": lines[1]["score"],
        "human_request": False,
        "markers": [],
    }


@pytest.mark.parametrize(
    "bad_line",
    ['{"id": 2}', '{"text": "hi"}', "not json", '["id", "text"]', '{"id": true, "text": "x"}'],
)
def test_run_signals_names_the_bad_line(tmp_path: Path, bad_line: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1, "text": "ok"}\n' + bad_line + "\n", encoding="utf-8")
    with pytest.raises(SignalsInputError, match=r":2: ") as raised:
        run_signals(source, io.StringIO())
    assert raised.value.line_number == 2
    assert isinstance(raised.value, ValueError)
