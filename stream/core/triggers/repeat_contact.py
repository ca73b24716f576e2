"""Repeat contact: the Nth contact on one issue within the window escalates, showing the others."""

from __future__ import annotations

from collections.abc import Sequence

from stream.core.decision import Evidence, TriggerHit
from stream.core.policy import Policy
from stream.core.state import ContactRecord
from stream.core.triggers import NO_HITS, TriggerResult
from stream.core.vocabulary import REPEAT_CONTACT as TRIGGER

RULE = "repeat_contact.same_issue"


def in_window(
    contacts: Sequence[ContactRecord], current: ContactRecord, policy: Policy
) -> list[ContactRecord]:
    """Contacts on the current contact's issue key, from `window_days` before it up to it.

    Inclusive: a contact exactly `window_days` earlier counts. Contacts after the current one in
    event time do not: the window ends at the current contact's own time.
    """
    window_ms = policy.compiled.repeat_window_ms
    start = current.at - window_ms
    key = current.issue_key
    return [c for c in contacts if c.issue_key == key and start <= c.at <= current.at]


def check(
    contacts: Sequence[ContactRecord], current: ContactRecord, policy: Policy
) -> TriggerResult:
    """Hit when the current contact is at least the Nth on its issue key inside the window."""
    rules = policy.repeat_contact
    same = in_window(contacts, current, policy)
    if len(same) < rules.contacts:
        return NO_HITS
    earlier = [c for c in same if c is not current and c.contact_id != current.contact_id]
    evidence = [
        Evidence(
            kind="prior_contact",
            detail=(
                f"contact {c.contact_id} ({c.action}, {c.channel}) on {c.issue_key} "
                f"in conversation {c.conversation_id}"
            ),
            value=float(c.at),
            ref=c.conversation_id,
        )
        for c in earlier
    ]
    evidence.append(
        Evidence(
            kind="count",
            detail=(
                f"{len(same)} contacts on {current.issue_key} within {rules.window_days:g} days"
            ),
            value=float(len(same)),
            threshold=float(rules.contacts),
            ref=current.contact_id,
        )
    )
    hit = TriggerHit(
        trigger=TRIGGER,
        rule=RULE,
        action=rules.action,
        reason=(
            f"Contact number {len(same)} about {current.issue_key} within "
            f"{rules.window_days:g} days."
        ),
        evidence=tuple(evidence),
    )
    return TriggerResult(hits=(hit,))
