"""Each trigger alone, table-driven at its edges: just below, at and just above every threshold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stream.core.decision import AccountSnapshot
from stream.core.events import MessageEvent
from stream.core.policy import Policy
from stream.core.state import ContactRecord, ConversationState, Turn
from stream.core.triggers import boundary, confidence, explicit_request, repeat_contact, sentiment
from stream.testing import DAY, SECOND, T0, EventFactory


def ai_turn(
    klass: str = "financial", conf: float | None = 0.95, kind: str = "refund", **proposal: Any
) -> MessageEvent:
    """An AI turn "m1" at T0 proposing `kind` (`proposal`: its amount, currency, target)."""
    events = EventFactory("c1", T0 - SECOND)
    return events.ai(
        "Sure.", action=kind, klass=klass, confidence=conf, message_id="m1", **proposal
    )


def account(**kw: Any) -> AccountSnapshot:
    kw.setdefault("known", True)
    kw.setdefault("primary_email", "pat@example.com")
    return AccountSnapshot(**kw)


# --- confidence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("klass", "conf", "fires"),
    [
        ("financial", 0.8999, True),
        ("financial", 0.90, False),
        ("financial", 0.9001, False),
        ("account_change", 0.8499, True),
        ("account_change", 0.85, False),
        ("account_change", 0.8501, False),
        ("informational", 0.4999, True),
        ("informational", 0.50, False),
        ("informational", 0.5001, False),
        # A class the policy does not list gets the strictest threshold (financial, 0.90).
        ("legal", 0.8999, True),
        ("legal", 0.90, False),
    ],
)
def test_confidence_edges_per_class(policy: Policy, klass: str, conf: float, fires: bool) -> None:
    result = confidence.check(ai_turn(klass, conf), policy)
    assert result.error is None
    assert bool(result.hits) is fires
    if fires:
        (hit,) = result.hits
        assert hit.trigger == "confidence"
        assert hit.rule == f"confidence.{klass}"
        assert hit.action == "escalate"
        assert hit.evidence[0].value == conf
        assert hit.evidence[0].threshold == confidence.threshold_for(klass, policy)


def test_confidence_ignores_turns_without_action(policy: Policy) -> None:
    message = MessageEvent("e", "c", T0, "cv", "m", "ai_agent", "hi", intent_confidence=0.1)
    assert confidence.check(message, policy).hits == ()


@pytest.mark.parametrize(("mode", "hits"), [("escalate", 1), ("ignore", 0)])
def test_missing_confidence_is_a_typed_error(
    policy_factory: Callable[..., Policy], mode: str, hits: int
) -> None:
    policy = policy_factory({"confidence": {"on_missing_confidence": mode}})
    result = confidence.check(ai_turn(conf=None), policy)
    assert result.error is not None and result.error.code == "missing_confidence"
    assert len(result.hits) == hits


def test_explicit_default_threshold(policy_factory: Callable[..., Policy]) -> None:
    policy = policy_factory({"confidence": {"default_threshold": 0.6}})
    assert confidence.check(ai_turn("legal", 0.61), policy).hits == ()
    assert confidence.check(ai_turn("legal", 0.59), policy).hits != ()


# --- policy boundary -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "fires"),
    [(99.99, False), (100.0, False), (100.01, True), (None, True)],
)
def test_refund_limit_edges(policy: Policy, amount: float | None, fires: bool) -> None:
    message = ai_turn(amount=amount, currency="USD")
    result = boundary.check(message, None, account(currency="USD"), policy)
    rules = [hit.rule for hit in result.hits]
    assert (rules == ["boundary.refund_limit"]) is fires


@pytest.mark.parametrize(
    ("tier", "amount", "currency", "rule"),
    [
        ("premium", 249.99, "USD", None),
        ("premium", 250.0, "USD", None),
        ("premium", 250.01, "USD", "boundary.refund_limit"),
        ("standard", 100.01, "USD", "boundary.refund_limit"),
        ("standard", 15000.0, "JPY", None),
        ("standard", 15000.5, "JPY", "boundary.refund_limit"),
        # No limit known for this currency: the agent cannot show it is within its authority.
        ("standard", 10.0, "EUR", "boundary.refund_currency"),
        # A tier limit is in the account's currency; a refund in another one cannot use it.
        ("premium", 10.0, "EUR", "boundary.refund_currency"),
    ],
)
def test_refund_limit_by_tier_and_currency(
    policy_factory: Callable[..., Policy],
    tier: str,
    amount: float,
    currency: str,
    rule: str | None,
) -> None:
    policy = policy_factory(
        {"boundaries": {"refund": {"by_tier": {"premium": 250}, "by_currency": {"JPY": 15000}}}}
    )
    message = ai_turn(amount=amount, currency=currency)
    result = boundary.check(message, None, account(tier=tier, currency="USD"), policy)
    assert [hit.rule for hit in result.hits] == ([rule] if rule else [])


@pytest.mark.parametrize(
    ("target", "primary", "fires"),
    [
        ("pat@example.com", "pat@example.com", False),
        ("  PAT@Example.com ", "pat@example.com", False),
        ("other@example.com", "pat@example.com", True),
        (None, "pat@example.com", True),
        ("pat@example.com", None, True),
    ],
)
def test_non_primary_email(
    policy: Policy, target: str | None, primary: str | None, fires: bool
) -> None:
    for kind in ("account_email_change", "account_disclosure"):
        message = ai_turn("account_change", 0.99, kind, target=target)
        result = boundary.check(message, None, account(primary_email=primary), policy)
        assert [hit.rule for hit in result.hits] == (
            ["boundary.non_primary_email"] if fires else []
        )


@pytest.mark.parametrize(
    ("snapshot", "fires"),
    [
        (account(enterprise_contract=True, contract_id="ENT-9"), True),
        (account(enterprise_contract=False), False),
        (None, True),
    ],
)
def test_enterprise_cancellation(
    policy: Policy, snapshot: AccountSnapshot | None, fires: bool
) -> None:
    message = ai_turn("account_change", 0.99, "cancel_contract")
    result = boundary.check(message, None, snapshot, policy)
    assert [hit.rule for hit in result.hits] == (
        ["boundary.enterprise_cancellation"] if fires else []
    )


def test_boundaries_can_be_disabled(policy_factory: Callable[..., Policy]) -> None:
    policy = policy_factory({"boundaries": {"refund": {"enabled": False}}})
    assert boundary.check(ai_turn(amount=1e6), None, account(), policy).hits == ()


@pytest.mark.parametrize(
    ("category", "flags", "fires"),
    [
        ("billing", ("disputed_charge", "recent_negative_review"), True),
        ("billing", ("recent_negative_review", "vip", "disputed_charge"), True),
        ("billing", ("disputed_charge",), False),
        ("billing", ("recent_negative_review",), False),
        ("billing", (), False),
        ("shipping", ("disputed_charge", "recent_negative_review"), False),
        (None, ("disputed_charge", "recent_negative_review"), False),
    ],
)
def test_operator_rule_disputed_billing(
    policy: Policy, category: str | None, flags: tuple[str, ...], fires: bool
) -> None:
    conv = ConversationState.opened("conv-1", T0)
    conv.category = category
    customer = MessageEvent("e", "c", T0, "conv-1", "m", "customer", "Why this charge?")
    result = boundary.check(customer, conv, account(flags=flags), policy)
    assert [hit.rule for hit in result.hits] == (["rules.disputed_billing"] if fires else [])
    if fires:
        kinds = {item.kind for item in result.hits[0].evidence}
        assert kinds == {"rule", "flag"}


def test_operator_rule_priority_and_message(policy_factory: Callable[..., Policy]) -> None:
    policy = policy_factory(
        {
            "rules": [
                {
                    "name": "lawyer",
                    "action": "escalate",
                    "priority": "urgent",
                    "message": "Connecting you with our legal team.",
                    "when": {"field": "message.text", "op": "contains", "value": "lawyer"},
                }
            ]
        }
    )
    customer = MessageEvent("e", "c", T0, "cv", "m", "customer", "My LAWYER will call you")
    (hit,) = boundary.check(customer, None, None, policy).hits
    assert (hit.rule, hit.priority, hit.message) == (
        "rules.lawyer",
        "urgent",
        "Connecting you with our legal team.",
    )


# --- sentiment -------------------------------------------------------------------------------


def turn(n: int, *kinds: str, signal: float = 0.1, score: float | None = None) -> Turn:
    """A customer turn with markers, a learned signal (0..1) and an upstream sentiment score."""
    markers = tuple((kind, f"{kind}-text") for kind in kinds)
    return Turn(
        f"m{n}", "customer", f"text {n}", T0 + n, markers, bool(kinds), score, signal=signal
    )


# The shipped policy's operating point for chat.
AT = 0.45
HIGH = 0.9


@pytest.mark.parametrize(
    ("turns", "rules"),
    [
        ([turn(1, signal=HIGH)], []),
        ([turn(1, signal=HIGH), turn(2, signal=HIGH)], ["sentiment.turns"]),
        # The threshold is inclusive, and just below it does not count.
        ([turn(1, signal=AT), turn(2, signal=AT)], ["sentiment.turns"]),
        ([turn(1, signal=HIGH), turn(2, signal=AT - 0.0001)], []),
        # A turn counts once, however many markers it carries.
        ([turn(1, "frustration", "hostile_short", "clarification", signal=HIGH)], []),
        # Markers alone do not make a turn dissatisfied: the learned signal does.
        ([turn(1, "frustration"), turn(2, "hostile_short")], []),
        # The dissatisfied turn four turns back is outside the window of the last 3 turns.
        ([turn(1, signal=HIGH), turn(2), turn(3), turn(4, signal=HIGH)], []),
        ([turn(1), turn(2, signal=HIGH), turn(3), turn(4, signal=HIGH)], ["sentiment.turns"]),
        # An upstream score at or below the floor makes a turn dissatisfied too.
        ([turn(1, signal=HIGH), turn(2, score=-0.6)], ["sentiment.turns"]),
        ([turn(1, score=-0.6), turn(2, score=-0.6)], ["sentiment.turns", "sentiment.score"]),
        ([turn(1, score=-0.59), turn(2, score=-0.9)], []),
        ([turn(1, score=-0.9)], []),
        # Two of the last three, but not consecutive: only the turn count fires.
        ([turn(1, score=-0.9), turn(2), turn(3, score=-0.9)], ["sentiment.turns"]),
        ([turn(1, score=-0.9), turn(2, score=-0.7), turn(3, score=0.2)], ["sentiment.turns"]),
        ([turn(1, signal=None), turn(2, signal=None)], []),  # type: ignore[arg-type]
    ],
)
def test_sentiment_edges(policy: Policy, turns: list[Turn], rules: list[str]) -> None:
    result = sentiment.check(turns, policy)
    assert result.error is None
    assert [hit.rule for hit in result.hits] == rules
    assert all(hit.action == "offer_transfer" for hit in result.hits)


def test_sentiment_evidence_shows_the_signal_and_the_markers(policy: Policy) -> None:
    turns = [turn(1, "frustration", signal=0.8), turn(2), turn(3, "hostile_short", signal=0.7)]
    (hit,) = sentiment.check(turns, policy).hits
    assert [e.message_id for e in hit.evidence] == ["m1", "m3"]
    first = hit.evidence[0]
    assert (first.kind, first.value, first.threshold) == ("dissatisfied_turn", 0.8, AT)
    assert "turn signal 0.80 >= 0.45" in first.detail
    assert "frustration: 'frustration-text'" in first.detail
    assert hit.reason.startswith("2 of the customer's last 3 turns show dissatisfaction")


def test_sentiment_threshold_and_turn_count_are_policy(
    policy_factory: Callable[..., Policy],
) -> None:
    turns = [turn(1, signal=0.4), turn(2, signal=0.45)]
    assert not sentiment.check(turns, policy_factory({})).hits
    lower = policy_factory({"sentiment": {"turn_threshold": 0.4}})
    assert sentiment.check(turns, lower).hits
    one = policy_factory({"sentiment": {"turn_threshold": 0.4, "min_turns": 1}})
    assert sentiment.check(turns[:1], one).hits


def test_sentiment_threshold_per_channel(policy: Policy) -> None:
    # The shipped policy has its own point for public social-media turns: the model's tweet base
    # rate is a training-only column, so tweets score low on the scale (docs/signal.md).
    turns = [turn(1, signal=0.3), turn(2, signal=0.3)]
    assert not sentiment.check(turns, policy, "chat").hits
    assert sentiment.check(turns, policy, "social").hits
    low = [turn(1, signal=0.2), turn(2, signal=0.2)]
    assert not sentiment.check(low, policy, "social").hits


# --- explicit request ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markers", "fires"),
    [
        ((("human_request", "speak to a real person"),), True),
        ((("frustration", "ridiculous"),), False),
        ((), False),
    ],
)
def test_explicit_request(
    policy: Policy, markers: tuple[tuple[str, str], ...], fires: bool
) -> None:
    result = explicit_request.check("m1", "I want to speak to a real person", markers, policy)
    assert bool(result.hits) is fires
    if fires:
        assert result.hits[0].action == "escalate"


# --- repeat contact --------------------------------------------------------------------------


def contact(n: int, at: int, key: str = "billing:inv-1") -> ContactRecord:
    return ContactRecord(f"ct{n}", f"conv-{n}", key, at, "billing", "chat", "opened")


@pytest.mark.parametrize(
    ("offsets", "fires"),
    [
        ([0, DAY], False),  # 2nd contact
        ([0, DAY, 2 * DAY], True),  # 3rd within a week
        ([0, 3 * DAY, 7 * DAY], True),  # exactly 7 days: inclusive
        ([0, 3 * DAY, 7 * DAY + 1], False),  # one millisecond past the window
        ([0, 3 * DAY, 7 * DAY - 1], True),
    ],
)
def test_repeat_contact_window(policy: Policy, offsets: list[int], fires: bool) -> None:
    contacts = [contact(n, T0 + offset) for n, offset in enumerate(offsets)]
    result = repeat_contact.check(contacts, contacts[-1], policy)
    assert bool(result.hits) is fires
    if fires:
        (hit,) = result.hits
        refs = [item.ref for item in hit.evidence if item.kind == "prior_contact"]
        assert refs == [f"conv-{n}" for n in range(len(offsets) - 1)]


def test_repeat_contact_counts_only_the_same_issue(policy: Policy) -> None:
    contacts = [
        contact(0, T0, "billing:inv-1"),
        contact(1, T0 + 1, "billing:inv-2"),
        contact(2, T0 + 2, "billing:inv-1"),
    ]
    assert repeat_contact.check(contacts, contacts[-1], policy).hits == ()


def test_repeat_contact_window_ends_at_the_contact(policy: Policy) -> None:
    # A contact later in event time does not count towards an earlier one.
    contacts = [contact(0, T0), contact(1, T0 + DAY), contact(2, T0 + 2 * DAY)]
    assert repeat_contact.check(contacts, contacts[1], policy).hits == ()


@pytest.mark.parametrize(("count", "days"), [(2, 1.0), (5, 30.0)])
def test_repeat_contact_parameters(
    policy_factory: Callable[..., Policy], count: int, days: float
) -> None:
    policy = policy_factory({"repeat_contact": {"contacts": count, "window_days": days}})
    step_ms = int(days * DAY) // count
    contacts = [contact(n, T0 + n * step_ms) for n in range(count)]
    assert repeat_contact.check(contacts, contacts[-1], policy).hits
    assert not repeat_contact.check(contacts[1:], contacts[-1], policy).hits
