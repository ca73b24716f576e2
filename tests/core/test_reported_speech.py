"""A request for a person counts only when the customer makes it, not when they report one.

Quoted words (any quotation marks) and words after a third party's reporting verb ("my colleague
said ...") are someone else's; the customer's own ask next to them still counts.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.markers import FRUSTRATION, HUMAN_REQUEST, analyze, analyze_turn
from stream.testing import labelled

ASKS = [
    "I want to talk to a real person",
    "talk to a real person",
    "get me a manager",
    "transfer me to a supervisor",
    "can I get a live agent",
    "representative please",
    "call me back",
]


def asks(text: str) -> bool:
    signal = analyze(text)
    if signal.human_request:
        assert any(m.kind == HUMAN_REQUEST for m in signal.markers)
    return signal.human_request


REPORTED_ASKS = [
    # Every kind of quotation mark.
    'My colleague said "I want to talk to a real person" but I just need the invoice.',
    "My colleague said “I want to talk to a real person” but I just need the invoice.",
    'My colleague said “I want to talk to a real person" but I just need the invoice.',
    "Mein Kollege meinte „I want to talk to a real person“ but I just need the invoice.",
    "Mein Kollege meinte „I want to talk to a real person” but I just need the invoice.",
    'Mein Kollege meinte „I want to talk to a real person" but I just need the invoice.',
    "Mon collègue a dit «I want to talk to a real person» but I just need the invoice.",
    "My colleague wrote ‘talk to a real person’ but I just need the invoice.",
    "My colleague wrote 'talk to a real person' but I just need the invoice.",
    "My colleague wrote 'get me a manager!' on the ticket, I only need the invoice.",
    # A quotation without a reporting verb is still someone else's words.
    'Funny sign at the gate: "talk to a real person", anyway where is gate C7?',
    '"Talk to a real person," my husband keeps saying. I need the gate number.',
    # Reported speech without quotation marks, up to the end of the sentence.
    "He said he wants to talk to a manager.",
    "She says get me a manager. Whatever, what time is boarding?",
    "They told me to talk to a supervisor",
    "my colleague told me to ask for a supervisor, can you tell me the fare?",
    "My husband keeps saying transfer me to a supervisor",
    "the bot keeps saying talk to an agent",
    "Someone asked to speak to a manager at the desk",
    "Everyone said talk to a real person, is that right?",
    "My son just told me to get a human on the line",
    "Like my wife said, the app is broken. The man at the desk said talk to a real person.",
]
OWN_ASKS_BESIDE_A_REPORT = [
    # The customer's own ask next to a report.
    "My colleague said it's fine, but I want to talk to a real person.",
    'My colleague said "it is fine". I want to talk to a real person.',
    "He said no. I want to talk to a real person",
    "He said it's broken and I want to talk to a real person",
    "He said it's broken so I want to talk to a real person",
    "He said it's broken; get me a manager",
    "She said wait: I want to talk to a real person",
    "He said it's fine, however I want to talk to a real person",
    "He said it's fine though I want to talk to a real person",
    "He said it's fine although I want to talk to a real person",
    "He said it's fine anyway I want to talk to a real person",
    "He said it's fine yet I want to talk to a real person",
    "He said it's fine!\nI want to talk to a real person",
    "She asked whether it is refundable? Get me a manager",
    # "As X said," agrees: the words after the comma are the customer's.
    "As my colleague said, I want to talk to a real person.",
    # The customer quoting themselves, or the AI, is still asking.
    "I said I want to talk to a real person",
    "You said I could talk to a real person. Transfer me.",
    # A whole turn in quotation marks is the customer's own message.
    '"I want to talk to a real person"',
    "“Get me a manager!”",
    # A quotation mark that never closes does not hide the ask.
    'The screen is 15" wide and I want to talk to a real person',
    # An ask right after a closing quotation mark, with no space.
    '"Fine."Talk to a real person now.',
    # An apostrophe is no quotation mark.
    "I don't care what it's called, talk to a real person",
]


@pytest.mark.parametrize(("text", "expected"), labelled(OWN_ASKS_BESIDE_A_REPORT, REPORTED_ASKS))
def test_only_the_customers_own_ask_counts(text: str, expected: bool) -> None:
    assert asks(text) is expected


def test_frustration_in_a_quote_is_kept() -> None:
    # Only the ask is a speech act that must be the customer's; relayed anger stays evidence.
    signal = analyze('My husband said "this is ridiculous" and he is right.')
    assert FRUSTRATION in {m.kind for m in signal.markers}


def test_the_explicit_request_trigger_ignores_a_reported_ask() -> None:
    from stream.core.triggers import explicit_request
    from stream.testing import make_policy

    policy = make_policy()
    for text, fires in (
        ('My colleague said "I want to talk to a real person" but I need the invoice.', False),
        ('My colleague said "fine". I want to talk to a real person.', True),
    ):
        markers = [(m.kind, m.text) for m in analyze(text).markers]
        assert ("human_request", "talk to a real person") in markers
        hits = explicit_request.check("m-1", text, markers, policy).hits
        assert [h.rule for h in hits] == (["explicit_request.human"] if fires else [])


def test_a_reported_ask_in_a_repeat_is_not_an_ask() -> None:
    previous = ["my colleague said talk to a real person about the invoice"]
    assert not analyze_turn(previous[0] + " again", previous).human_request


_FRAMES = [
    'My colleague said "{}" but I just need the invoice.',
    "My colleague said “{}” but I just need the invoice.",
    "My boss wrote ‘{}’ on the ticket.",
    "He told me to {}.",
    "My husband keeps saying {}.",
]
_PLAIN = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters=" ,"),
    max_size=40,
)


@given(st.sampled_from(ASKS), st.sampled_from(_FRAMES), _PLAIN)
def test_any_reported_ask_is_not_an_ask(ask: str, frame: str, tail: str) -> None:
    assert not asks(frame.format(ask) + " " + tail)


@given(st.sampled_from(ASKS), st.sampled_from(_FRAMES), st.sampled_from(ASKS))
def test_an_own_ask_after_a_report_counts(reported: str, frame: str, own: str) -> None:
    assert asks(frame.format(reported) + " " + own[0].upper() + own[1:] + ".")


@given(st.sampled_from(ASKS), _PLAIN)
def test_an_ask_without_a_report_counts(ask: str, before: str) -> None:
    # Lowercase words and commas in a sentence of their own can neither quote, report nor refuse
    # the ask after them.
    assert asks(f"{before}. {ask}")
