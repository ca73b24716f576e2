"""Turn one real conversation from an event file into a policy test case, in one command.

The case carries the account, the earlier contacts, the turns with their scores and actions, and
as its expectation what the current policy decides (or what the reviewer says it must). Times
become relative, so the case reads like the conversation. With `redact`, personal data in the text
is masked by the same function the logs use; email fields the policy compares (primary email,
an action's target) get stable stand-ins, so the case still decides the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from stream.core.decision import Decision
from stream.core.events import (
    AccountEvent,
    ContactEvent,
    Event,
    MessageEvent,
    SentimentEvent,
    account_facts,
)
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.core.step import step
from stream.core.vocabulary import ACTION_RANK
from stream.errors import BadInputError
from stream.logs import redact
from stream.policytest.load import LoadedCase, parse_cases
from stream.policytest.run import CaseResult, run_case
from stream.policytest.timing import format_after, format_ago, format_duration

# Earlier contacts are kept this far back: the longest repeat-contact window a policy may set.
HISTORY_MS: Final[int] = 90 * 86_400_000
_ROLE_KEYS: Final[dict[str, str]] = {
    "customer": "customer",
    "ai_agent": "ai",
    "human_agent": "human",
    "system": "system",
}


class CaptureError(BadInputError):
    """The event file or the conversation cannot give a case; the message says why."""


@dataclass(slots=True)
class _History:
    customer_id: str
    messages: list[MessageEvent] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    contacts: list[ContactEvent] = field(default_factory=list)
    own_contacts: list[ContactEvent] = field(default_factory=list)
    account: AccountEvent | None = None
    # Every event of the customer up to the conversation's last one, in file order.
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Captured:
    """The captured case as YAML text, and what a reader of it should know."""

    yaml_text: str
    case: LoadedCase
    result: CaseResult
    notes: tuple[str, ...]


def _read(path: Path) -> Iterator[Event]:
    from stream.backtest.sources import InputError, JsonlSource

    try:
        yield from JsonlSource(path, "stop", warn=None)
    except InputError as exc:
        raise CaptureError(f"{exc}") from exc
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read the event file: {exc.strerror}") from exc


def _conversation_of(event: Event) -> str | None:
    return getattr(event, "conversation_id", None)


def _history(path: Path, conversation: str) -> _History:
    customer: str | None = None
    seen: Counter[str] = Counter()
    for event in _read(path):
        conv = _conversation_of(event)
        if conv == conversation:
            customer = event.customer_id
            break
        if conv is not None and len(seen) < 5:
            seen[conv] += 1
    if customer is None:
        examples = ", ".join(seen) or "none"
        raise CaptureError(
            f"{path}: no event of conversation {conversation!r} (conversations in the file "
            f"include: {examples})"
        )
    history = _History(customer)
    last_index = -1
    for event in _read(path):
        if event.customer_id != customer:
            continue
        history.events.append(event)
        if _conversation_of(event) == conversation:
            last_index = len(history.events)
    del history.events[last_index:]
    for event in history.events:
        if isinstance(event, AccountEvent):
            if history.account is None or event.occurred_at >= history.account.occurred_at:
                history.account = event
        elif isinstance(event, ContactEvent):
            if event.action == "closed":
                continue
            if event.conversation_id == conversation:
                history.own_contacts.append(event)
            else:
                history.contacts.append(event)
        elif isinstance(event, MessageEvent) and event.conversation_id == conversation:
            history.messages.append(event)
        elif isinstance(event, SentimentEvent) and event.conversation_id == conversation:
            history.scores[event.message_id] = event.score
    if not history.messages:
        raise CaptureError(f"{path}: conversation {conversation!r} has no messages to test")
    return history


class _Emails:
    """Stable stand-ins for email addresses, so equal addresses stay equal after redaction."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        key = value.strip().lower()
        if key not in self.known:
            self.known[key] = f"email-{len(self.known) + 1}@example.invalid"
        return self.known[key]


def _case_dict(
    history: _History, conversation: str, name: str, redacted: bool
) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    emails = _Emails()

    def text(value: str) -> str:
        return redact(value) if redacted else value

    def email(value: str | None) -> str | None:
        return emails(value) if redacted else value

    messages = history.messages
    opening = history.own_contacts[0] if history.own_contacts else None
    start = min(m.occurred_at for m in messages)
    if opening is not None:
        if opening.occurred_at > start:
            notes.append(
                "the conversation's contact came after its first message; the case opens the "
                "contact first"
            )
        start = min(start, opening.occurred_at)
    if len(history.own_contacts) > 1:
        notes.append(
            f"the conversation has {len(history.own_contacts)} contact events; the case keeps "
            "the first"
        )
    category = next(
        (m.category for m in messages if m.category),
        opening.category if opening is not None else None,
    )
    case: dict[str, Any] = {
        "name": name,
        "description": "",
        "customer": history.customer_id,
        "conversation": conversation,
    }
    if category is not None:
        case["category"] = category
    case["channel"] = messages[0].channel
    account = history.account
    if account is not None:
        case["account"] = {
            **account_facts(account),
            "primary_email": email(account.primary_email),
            "flags": list(account.flags),
            "at": format_ago(max(0, start - account.occurred_at)),
        }
    prior = [c for c in history.contacts if start - HISTORY_MS <= c.occurred_at <= start]
    if prior:
        case["contacts"] = [
            {
                "at": format_ago(start - c.occurred_at),
                "issue": c.issue_key,
                "action": c.action,
                "conversation": c.conversation_id,
                "category": c.category,
                "channel": c.channel,
            }
            for c in prior
        ]
    if opening is not None:
        case["contact"] = {
            "issue": opening.issue_key,
            "action": opening.action,
            "category": opening.category,
        }
    turns: list[dict[str, Any]] = []
    previous = start
    for message in messages:
        role = _ROLE_KEYS[message.role]
        turn: dict[str, Any] = {role: text(message.text)}
        if message.occurred_at >= previous:
            turn["at"] = format_after(message.occurred_at - previous)
        else:
            turn["at"] = format_duration(message.occurred_at - start)
            notes.append(f"message {message.message_id} is earlier than the turn before it")
        previous = max(previous, message.occurred_at)
        if message.category and message.category != category:
            turn["category"] = message.category
        if role == "customer" and message.message_id in history.scores:
            turn["sentiment"] = history.scores[message.message_id]
        if role == "ai":
            if message.intent is not None:
                turn["intent"] = message.intent
            if message.intent_confidence is not None:
                turn["confidence"] = message.intent_confidence
            action = message.proposed_action
            if action is not None:
                # The case's field names: `class` stands for `consequence_class`.
                turn["action"] = {
                    ("class" if name == "consequence_class" else name): value
                    for name, value in asdict(action).items()
                }
                turn["action"]["target"] = (
                    email(action.target)
                    if _looks_like_email(action.target)
                    else (text(action.target) if action.target is not None else None)
                )
            if message.action_attempted:
                turn["attempted"] = True
            if message.action_failed:
                turn["failed"] = True
        turns.append(turn)
    case["turns"] = turns
    return _without_nulls(case), notes


def _looks_like_email(value: str | None) -> bool:
    return value is not None and "@" in value


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _recorded(history: _History, conversation: str, policy: Policy) -> list[Decision]:
    """What `step` decided on the conversation from the file's own events (the fidelity check)."""
    state: CustomerState | None = None
    decisions: list[Decision] = []
    for event in history.events:
        outcome = step(state, event, policy)
        state = outcome.state
        decisions.extend(d for d in outcome.decisions if d.conversation_id == conversation)
    return decisions


def _furthest(decisions: list[Decision]) -> tuple[str, tuple[str, ...]]:
    best: Decision | None = None
    for decision in decisions:
        rank = ACTION_RANK[decision.action]
        if rank > 0 and (best is None or rank > ACTION_RANK[best.action]):
            best = decision
    if best is None:
        return "continue", ()
    return best.action, tuple(sorted({hit.rule for hit in best.triggers}))


def capture(
    events: Path,
    conversation: str,
    policy: Policy,
    *,
    expect: str | None = None,
    name: str | None = None,
    redacted: bool = False,
) -> Captured:
    """The case of `conversation` in `events`, with the expectation `policy` gives (or `expect`)."""
    history = _history(events, conversation)
    case_name = name or f"captured {conversation}"
    case, notes = _case_dict(history, conversation, case_name, redacted)
    # Judge the case as written, so the expectation is exactly what running it gives.
    probe = dict(case, expect={"action": "continue"})
    loaded = _single(probe)
    result = run_case(loaded, policy)
    decided = result.action
    decisive = result.decisive
    rules = sorted({hit.rule for hit in decisive.decision.triggers}) if decisive else []
    triggers = sorted({hit.trigger for hit in decisive.decision.triggers}) if decisive else []
    escalations = sum(1 for item in result.decided if item.decision.action == "escalate")
    summary = f"policy {policy.version} decides {decided}"
    if decisive is not None:
        summary += f" at turn {decisive.turn} ({', '.join(rules)})"
    expectation: dict[str, Any]
    if expect is None or expect == decided:
        expectation = {"action": decided}
        if decisive is not None:
            expectation.update(
                by_turn=decisive.turn,
                not_before=decisive.turn,
                triggers=triggers,
                rules=rules,
            )
        expectation["escalations"] = escalations
    else:
        expectation = {"action": expect}
        notes.append(f"the expectation ({expect}) differs from what {summary}: the case fails now")
    description = f"Captured from {events} (conversation {conversation}); {summary}."
    if redacted:
        description += " Personal data in the text is redacted."
    case = {"name": case_name, "description": description, **case, "expect": expectation}
    recorded = _furthest(_recorded(history, conversation, policy))
    if recorded != (decided, tuple(rules)):
        notes.append(
            f"the recorded events decide {recorded[0]} ({', '.join(recorded[1]) or 'no rule'}) "
            f"where the case decides {decided} ({', '.join(rules) or 'no rule'}): the event file "
            "holds something the case format does not carry (e.g. a changed account mid-way)"
        )
    text = yaml.safe_dump(
        {"cases": [case]}, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
    )
    final = _single(case)
    return Captured(text, final, run_case(final, policy), tuple(notes))


def _single(case: dict[str, Any]) -> LoadedCase:
    loaded, problems = parse_cases(yaml.safe_dump({"cases": [case]}, sort_keys=False), "captured")
    if problems:
        raise CaptureError("; ".join(str(p) for p in problems))
    return loaded[0]
