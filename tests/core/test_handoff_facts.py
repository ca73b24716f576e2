"""The handoff package's facts: message, prior contacts, ticket subject and tags, revisions.

Text a person reads is checked for the facts it must carry and for leaked placeholders, never for
its wording.
"""

from __future__ import annotations

from collections.abc import Callable

from stream.core.decision import HandoffPackage
from stream.core.policy import Policy
from stream.testing import DAY, T0, EventFactory, Run, rule


def no_placeholders(package: HandoffPackage) -> None:
    texts = [package.ticket.subject, package.ticket.body, package.attempts.summary]
    texts += [hit.reason for hit in package.reasons]
    texts += [item.detail for hit in package.reasons for item in hit.evidence]
    for text in texts:
        assert "None" not in text and "XX" not in text, text


def escalate(run: Run, events: EventFactory, conversation_id: str = "conv-1") -> HandoffPackage:
    (decision,), (package,) = run.feed(events.customer("I want a human", conversation_id))
    assert package.customer_message == decision.customer_message == run.policy.messages.escalate
    return package


def test_package_of_a_customer_without_snapshot_or_category(run: Run, events: EventFactory) -> None:
    package = escalate(run, events)
    assert package.ticket.subject.startswith("[general] ")
    assert package.ticket.tags == (
        "escalation",
        "trigger:explicit_request",
        "rule:explicit_request.human",
        "category:general",
    )
    assert package.attempts.summary
    no_placeholders(package)


def test_package_of_a_known_account_lists_tier_flags_and_contract(
    run: Run, events: EventFactory
) -> None:
    run.feed(
        events.account(
            tier="enterprise",
            enterprise_contract=True,
            contract_id="ent-42",
            flags=["vip", "not_relevant"],
            balance=12.5,
            currency="EUR",
        )
    )
    run.feed(
        events.ai(action="refund", klass="financial", amount=20.0, currency="EUR", confidence=0.95),
        events.ai(
            action="refund",
            klass="financial",
            amount=30.0,
            confidence=0.97,
            action_attempted=True,
            action_failed=True,
        ),
        events.ai(action="lookup", confidence=None, action_attempted=True),
    )
    (_, (package,)) = run.feed(events.customer("I want a human", category="billing"))
    assert package.ticket.tags[-2:] == ("tier:enterprise", "flag:vip")
    assert "category:billing" in package.ticket.tags
    assert package.relevant_flags == ("vip",)
    body = package.ticket.body
    for fact in ("ent-42", "12.50", "EUR", "vip", "20.00", "30.00", "0.95", "0.97", "lookup"):
        assert fact in body, fact
    no_placeholders(package)


def test_prior_contacts_are_other_conversations_on_the_same_issue(
    run: Run, events: EventFactory
) -> None:
    run.feed(
        events.contact("conv-a", "billing:1", at=T0, category="billing"),
        events.contact("conv-x", "shipping:7", at=T0 + 1, category="shipping"),
        events.contact("conv-b", "billing:1", at=T0 + DAY, category="refunds"),
    )
    (decision,), (package,) = run.feed(events.contact("conv-c", "billing:1", at=T0 + 2 * DAY))
    assert decision.action == "escalate"
    assert [
        (p.conversation_id, p.issue_key, p.category, p.channel) for p in package.prior_contacts
    ] == [
        ("conv-a", "billing:1", "billing", "chat"),
        ("conv-b", "billing:1", "refunds", "chat"),
    ]
    assert "conv-a" in package.ticket.body and "conv-b" in package.ticket.body
    no_placeholders(package)


def test_a_long_subject_is_cut_with_an_ellipsis(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    long_rule = rule("long", "message.text", "contains", "lawyer", description="word " * 60)
    short_rule = rule("short", "message.text", "contains", "court", description="x" * 81)
    policy = policy_factory({"rules": [long_rule, short_rule]})
    (_, (long,)) = Run(policy).feed(events.customer("my lawyer"))
    assert len(long.ticket.subject) == 120 and long.ticket.subject.endswith("…")
    (_, (short,)) = Run(policy).feed(events.customer("see you in court"))
    # "[general] Escalated: policy boundary — " is 39 characters: 120 exactly is not cut
    assert short.ticket.subject == "[general] Escalated: policy boundary — " + "x" * 81


def test_revisions_count_customer_turns_and_keep_each_rule_once(
    run: Run, events: EventFactory
) -> None:
    first = escalate(run, events)
    assert first.attempts.customer_turns == 1
    (_, (second,)) = run.feed(events.customer("Hello? A human please"))
    assert second.revision == 1
    assert second.attempts.customer_turns == 2
    assert [hit.rule for hit in second.reasons] == ["explicit_request.human"]
    assert second.ticket == first.ticket
