"""The handoff package: everything the human needs, built deterministically from folded events."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from stream.core.decision import (
    UNKNOWN_ACCOUNT,
    AccountSnapshot,
    AgentAttempts,
    Decision,
    HandoffPackage,
    PriorContact,
    TicketDraft,
    TranscriptTurn,
    TriggerHit,
)
from stream.core.policy import Policy
from stream.core.state import ContactRecord, ConversationState, CustomerState
from stream.core.vocabulary import Priority

# Reasons listed in a package; revisions append new ones, so the list needs its own bound.
MAX_REASONS: Final[int] = 20
MAX_PRIOR_CONTACTS: Final[int] = 20
_SUBJECT_MAX: Final[int] = 120
# An AI turn that asks the customer to clarify or confirm something, as support bots word it.
CLARIFYING: Final[re.Pattern[str]] = re.compile(
    r"\b(?:could|can|would) you (?:please )?(?:clarify|confirm|provide|share|tell me|specify"
    r"|describe|rephrase|explain)\b|\bwhat do you mean\b|\bwhich (?:order|invoice|account|item"
    r"|product|charge|payment|one)\b|\bdo you mean\b|\bto clarify\b",
    re.IGNORECASE,
)
_TRIGGER_LABEL: Final[dict[str, str]] = {
    "confidence": "low confidence",
    "sentiment": "negative sentiment",
    "explicit_request": "customer asked for a person",
    "policy_boundary": "policy boundary",
    "repeat_contact": "repeat contact",
}


def relevant_flags(account: AccountSnapshot | None, policy: Policy) -> tuple[str, ...]:
    """Account flags the policy marks as bearing on escalations, in the account's own order."""
    if account is None:
        return ()
    wanted = policy.compiled.relevant_flags
    return tuple(flag for flag in account.flags if flag in wanted)


def attempts_of(conv: ConversationState) -> AgentAttempts:
    """What the AI agent did, as counts, the actions it proposed, and a few plain sentences."""
    # Only facts that change with AI turns go into the summary, so a revision caused by a customer
    # turn can keep the summary and the ticket built from it.
    parts = [f"The AI agent replied {conv.ai_turns} time(s)."]
    if conv.intents:
        parts.append(f"Intents classified: {', '.join(conv.intents)}.")
    for action in conv.attempts:
        amount = ""
        if action.amount is not None:
            amount = f" of {action.amount:.2f}" + (f" {action.currency}" if action.currency else "")
        confidence = (
            f" at confidence {action.confidence:.2f}" if action.confidence is not None else ""
        )
        if action.failed:
            outcome = "attempted and failed"
        elif action.attempted:
            outcome = "attempted"
        else:
            outcome = "proposed, not taken"
        parts.append(f"{action.type}{amount}{confidence}: {outcome}.")
    if conv.clarifications:
        parts.append(f"It asked the customer to clarify {conv.clarifications} time(s).")
    if not conv.attempts:
        parts.append("No action was proposed.")
    return AgentAttempts(
        summary=" ".join(parts),
        intents=tuple(conv.intents),
        actions=tuple(conv.attempts),
        clarifications_asked=conv.clarifications,
        ai_turns=conv.ai_turns,
        customer_turns=conv.customer_turns,
    )


def transcript_of(conv: ConversationState, policy: Policy) -> tuple[TranscriptTurn, ...]:
    turns = conv.turns[-policy.handoff.transcript_turns :]
    return tuple(TranscriptTurn(t.message_id, t.role, t.text, t.at) for t in turns)


def prior_contacts_for(
    state: CustomerState, conversation_id: str, until: int, window_ms: int
) -> tuple[PriorContact, ...]:
    """Earlier contacts on the issues this conversation is about, from other conversations,
    within the repeat window before `until`: the state keeps no older ones for long (idle expiry,
    stream/core/expiry.py), so the package must not depend on whether they are still there."""
    since = until - window_ms
    keys = {
        c.issue_key
        for c in state.contacts
        if c.conversation_id == conversation_id and c.at >= since
    }
    if not keys:
        return ()
    prior: list[ContactRecord] = [
        c
        for c in state.contacts
        if c.issue_key in keys and c.conversation_id != conversation_id and since <= c.at <= until
    ]
    return tuple(
        PriorContact(c.contact_id, c.conversation_id, c.issue_key, c.at, c.category, c.channel)
        for c in prior[-MAX_PRIOR_CONTACTS:]
    )


def queue_for(reasons: Sequence[TriggerHit], category: str | None, policy: Policy) -> str:
    """First route whose trigger (any reason's) and category match; else the default queue."""
    triggers = {hit.trigger for hit in reasons}
    for route in policy.routing.routes:
        if route.trigger is not None and route.trigger not in triggers:
            continue
        if route.category is not None and route.category != category:
            continue
        return route.queue
    return policy.routing.default_queue


def ticket_for(
    *,
    conv: ConversationState,
    account: AccountSnapshot,
    attempts: AgentAttempts,
    reasons: Sequence[TriggerHit],
    prior: Sequence[PriorContact],
    flags: Sequence[str],
    priority: Priority,
    customer_message: str,
    policy: Policy,
) -> TicketDraft:
    labels = []
    for hit in reasons:
        label = _TRIGGER_LABEL.get(hit.trigger, hit.trigger)
        if label not in labels:
            labels.append(label)
    category = conv.category or "general"
    subject = f"[{category}] Escalated: {', '.join(labels) or 'review'}"
    if reasons:
        subject = f"{subject} — {reasons[0].reason}"
    if len(subject) > _SUBJECT_MAX:
        subject = subject[: _SUBJECT_MAX - 1] + "…"
    lines = [f"Conversation {conv.conversation_id} ({conv.channel}, category {category}).", ""]
    lines.append("Why a person is needed:")
    for hit in reasons:
        lines.append(f"- [{hit.rule}] {hit.reason}")
        for item in hit.evidence[:4]:
            lines.append(f"    • {item.detail}")
    lines += ["", "What the AI agent did:", attempts.summary, ""]
    if account.known:
        lines.append(
            f"Account: tier {account.tier}, plan {account.plan or '-'}, balance "
            f"{account.balance:.2f} {account.currency}, open cases {account.open_cases}"
            + (
                f", enterprise contract {account.contract_id or ''}".rstrip()
                if account.enterprise_contract
                else ""
            )
            + "."
        )
    else:
        lines.append("Account: no snapshot known.")
    if flags:
        lines.append(f"Relevant flags: {', '.join(flags)}.")
    if prior:
        lines.append("Earlier contacts on the same issue:")
        for contact in prior:
            lines.append(
                f"- {contact.contact_id} in conversation {contact.conversation_id} "
                f"({contact.channel}, {contact.issue_key})"
            )
    lines += ["", f"Customer was told: {customer_message}"]
    tags = ["escalation"]
    for hit in reasons:
        for tag in (f"trigger:{hit.trigger}", f"rule:{hit.rule}"):
            if tag not in tags:
                tags.append(tag)
    tags.append(f"category:{category}")
    if account.known:
        tags.append(f"tier:{account.tier}")
    tags.extend(f"flag:{flag}" for flag in flags)
    return TicketDraft(
        subject=subject,
        body="\n".join(lines),
        priority=priority,
        tags=tuple(tags),
        queue=queue_for(reasons, conv.category, policy),
    )


def with_new_turns(
    previous: HandoffPackage, conv: ConversationState, policy: Policy
) -> HandoffPackage:
    """The next revision when only turns changed: no new reason and no AI turn since `previous`.

    Summary, ticket and reasons are then unchanged, so only the transcript and counts are redone.
    """
    return replace(
        previous,
        revision=previous.revision + 1,
        attempts=replace(previous.attempts, customer_turns=conv.customer_turns),
        transcript=transcript_of(conv, policy),
    )


def merge_reasons(
    old: Sequence[TriggerHit], new: Sequence[TriggerHit]
) -> tuple[tuple[TriggerHit, ...], bool]:
    """Append hits whose rule is not listed yet; report whether anything was added."""
    rules = {hit.rule for hit in old}
    merged = list(old)
    for hit in new:
        if hit.rule not in rules and len(merged) < MAX_REASONS:
            merged.append(hit)
            rules.add(hit.rule)
    return tuple(merged), len(merged) != len(old)


def build(
    *,
    customer_id: str,
    conv: ConversationState,
    account: AccountSnapshot | None,
    policy: Policy,
    handoff_id: str,
    decision_id: str,
    revision: int,
    escalated_at: int,
    policy_version: str,
    reasons: Sequence[TriggerHit],
    prior_contacts: Sequence[PriorContact],
    priority: Priority,
    customer_message: str,
) -> HandoffPackage:
    """Assemble a package; revisions pass the escalation's account, contacts and id unchanged."""
    snapshot = account if account is not None else UNKNOWN_ACCOUNT
    attempts = attempts_of(conv)
    flags = relevant_flags(snapshot, policy)
    reasons = tuple(reasons[:MAX_REASONS])
    prior = tuple(prior_contacts)
    ticket = ticket_for(
        conv=conv,
        account=snapshot,
        attempts=attempts,
        reasons=reasons,
        prior=prior,
        flags=flags,
        priority=priority,
        customer_message=customer_message,
        policy=policy,
    )
    return HandoffPackage(
        handoff_id=handoff_id,
        decision_id=decision_id,
        revision=revision,
        customer_id=customer_id,
        conversation_id=conv.conversation_id,
        escalated_at=escalated_at,
        policy_version=policy_version,
        account=snapshot,
        attempts=attempts,
        reasons=reasons,
        relevant_flags=flags,
        prior_contacts=prior,
        transcript=transcript_of(conv, policy),
        ticket=ticket,
        customer_message=customer_message,
    )


def fallback(
    decision: Decision,
    conv: ConversationState,
    policy: Policy,
    customer_message: str,
    failure: str,
) -> HandoffPackage:
    """The package of an escalation whose full package could not be built.

    Why: the escalation must still reach a person with the action held (DESIGN section 8), so this
    package is built from the decision alone, with nothing that could fail the way the full one
    did; the ticket says what is missing and why, and the person reads the conversation itself.
    """
    reasons = tuple(decision.triggers[:MAX_REASONS])
    return HandoffPackage(
        handoff_id=decision.decision_id,
        decision_id=decision.decision_id,
        revision=0,
        customer_id=decision.customer_id,
        conversation_id=conv.conversation_id,
        escalated_at=decision.occurred_at,
        policy_version=decision.policy_version,
        account=UNKNOWN_ACCOUNT,
        attempts=AgentAttempts(summary="Not available: the handoff package could not be built."),
        reasons=reasons,
        relevant_flags=(),
        prior_contacts=(),
        transcript=(),
        ticket=TicketDraft(
            subject=f"Escalation of conversation {conv.conversation_id}"[:_SUBJECT_MAX],
            body=(
                "The handoff package could not be built "
                f"({failure[:500]}). Read the conversation in the support tool."
            ),
            priority=decision.priority,
            tags=("handoff_error",),
            queue=policy.routing.default_queue,
        ),
        customer_message=customer_message,
    )
