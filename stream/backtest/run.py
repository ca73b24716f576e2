"""The backtest run: typed events through the worker's pure `step`, per policy, with no I/O.

`run_policy(events, policy)` is the parity entry point: given the events a worker consumed, in the
order it consumed them, it returns the decisions that worker made (ids included), because it folds
the same `step` over the same per-customer state. `run_policies` folds several policies over one
pass of the events, so a candidate and a baseline cost one read of the input.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from tqdm import tqdm

from stream.core import statecodec
from stream.core.decision import Decision, HandoffPackage
from stream.core.events import Event, OutcomeEvent
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.core.step import step
from stream.core.vocabulary import ACTION_RANK, Action
from stream.errors import RunError, UsageError

# The progress bar is advanced in blocks: a per-event update would cost more than some steps.
_PROGRESS_BLOCK: Final[int] = 4096
_WORDS_KEPT: Final[int] = 2
_WORDS_CHARS: Final[int] = 240


@dataclass(slots=True)
class ConversationFacts:
    """What the input says about one conversation, whatever the policy."""

    conversation_id: str
    customer_id: str
    first_at: int
    last_at: int
    category: str | None = None
    events: int = 0
    # The customer's first turns, shortened: what a reviewer of a changed conversation reads first.
    words: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Verdict:
    """What one policy decided about one conversation.

    `action` is the furthest the conversation went (escalate over offer_transfer over continue);
    `decisive` is the first decision that reached it, whose triggers and evidence explain it.
    """

    decisions: int = 0
    action: Action = "continue"
    decisive: Decision | None = None


@dataclass(slots=True)
class Inputs:
    """Policy-independent facts gathered in the same pass: conversations and their outcomes."""

    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    conversations: dict[str, ConversationFacts] = field(default_factory=dict)
    # The latest outcome per conversation (by event time, then input order): a reopen is reported
    # by a later outcome record for the same ticket.
    outcomes: dict[str, OutcomeEvent] = field(default_factory=dict)
    # The judge's reopen window starts at the earliest close (a `closed` contact), or without one
    # at the earliest outcome: both kept per conversation.
    closed_at: dict[str, int] = field(default_factory=dict)
    first_outcome_at: dict[str, int] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        self.events += 1
        kind = event.type
        self.by_type[kind] += 1
        if kind == "outcome":
            assert isinstance(event, OutcomeEvent)
            ticket_of = event.conversation_id
            previous = self.outcomes.get(ticket_of)
            if previous is None or event.occurred_at >= previous.occurred_at:
                self.outcomes[ticket_of] = event
            first = self.first_outcome_at.get(ticket_of)
            if first is None or event.occurred_at < first:
                self.first_outcome_at[ticket_of] = event.occurred_at
            return
        if kind == "account":
            return
        conversation_id: str = event.conversation_id  # type: ignore[union-attr]
        if kind == "contact" and event.action == "closed":  # type: ignore[union-attr]
            closed = self.closed_at.get(conversation_id)
            if closed is None or event.occurred_at < closed:
                self.closed_at[conversation_id] = event.occurred_at
        seen = self.conversations.get(conversation_id)
        if seen is None:
            seen = ConversationFacts(
                conversation_id, event.customer_id, event.occurred_at, event.occurred_at
            )
            self.conversations[conversation_id] = seen
        else:
            seen.first_at = min(seen.first_at, event.occurred_at)
            seen.last_at = max(seen.last_at, event.occurred_at)
        seen.events += 1
        # The latest classification wins: categories are refined as a conversation goes on.
        category = getattr(event, "category", None)
        if category is not None:
            seen.category = category
        if (
            kind == "message" and len(seen.words) < _WORDS_KEPT and event.role == "customer"  # type: ignore[union-attr]
        ):
            text: str = event.text  # type: ignore[union-attr]
            seen.words.append(text if len(text) <= _WORDS_CHARS else text[: _WORDS_CHARS - 1] + "…")


@dataclass(slots=True)
class RunResult:
    """Everything one policy produced over the input, in the order it was produced."""

    policy: Policy
    inputs: Inputs
    decisions: list[Decision] = field(default_factory=list)
    handoffs: list[HandoffPackage] = field(default_factory=list)
    states: dict[str, CustomerState] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    decision_count: int = 0
    handoff_count: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    # Triggers that could not evaluate, by trigger: each made its decision fail safe, as live.
    trigger_errors: Counter[str] = field(default_factory=Counter)
    # Messages whose id came again with other content (absorbed as redeliveries, as live).
    conflicting_duplicates: int = 0
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return self.inputs.events


DecisionSink = Callable[[Decision], None]


class StepError(RunError):
    """`step` failed on an event: a bug in the decision core, named with the event it hit."""

    def __init__(self, event: Event, policy: Policy, exc: Exception) -> None:
        super().__init__(
            f"step failed on {event.type} event {event.event_id!r} of customer "
            f"{event.customer_id!r} under policy {policy.version!r}: {type(exc).__name__}: {exc}"
        )
        self.event = event


class _Runner:
    """One policy's fold: per-customer state and what it emits."""

    __slots__ = ("result", "policy", "states", "verdicts", "keep", "sink")

    def __init__(
        self, policy: Policy, inputs: Inputs, keep: bool, sink: DecisionSink | None
    ) -> None:
        self.result = RunResult(policy=policy, inputs=inputs)
        self.policy = policy
        self.states = self.result.states
        self.verdicts = self.result.verdicts
        self.keep = keep
        self.sink = sink

    def feed(self, event: Event) -> None:
        states = self.states
        customer_id = event.customer_id
        try:
            outcome = step(states.get(customer_id), event, self.policy)
        except Exception as exc:
            # The worker dead-letters such an event and goes on; a backtest that did so would
            # report rates over a history it did not fully decide, so it stops and says where.
            raise StepError(event, self.policy, exc) from exc
        # The worker keeps each stored state under its byte budget; so does the backtest.
        statecodec.fit(outcome.state, self.policy.state.max_state_bytes)
        states[customer_id] = outcome.state
        if outcome.conflict is not None:
            self.result.conflicting_duplicates += 1
        if outcome.errors:
            for error in outcome.errors:
                self.result.trigger_errors[error.trigger] += 1
        if outcome.decisions:
            result = self.result
            for decision in outcome.decisions:
                result.decision_count += 1
                result.actions[decision.action] += 1
                if self.keep:
                    result.decisions.append(decision)
                if self.sink is not None:
                    self.sink(decision)
                self._tally(decision)
        if outcome.handoffs:
            self.result.handoff_count += len(outcome.handoffs)
            if self.keep:
                self.result.handoffs.extend(outcome.handoffs)

    def _tally(self, decision: Decision) -> None:
        key = decision.conversation_id or f"customer:{decision.customer_id}"
        verdict = self.verdicts.get(key)
        if verdict is None:
            verdict = self.verdicts[key] = Verdict()
        verdict.decisions += 1
        if ACTION_RANK[decision.action] > ACTION_RANK[verdict.action]:
            verdict.action = decision.action
            verdict.decisive = decision


def run_policies(
    events: Iterable[Event],
    policies: Mapping[str, Policy],
    progress: bool = False,
    *,
    total: int | Callable[[], int | None] | None = None,
    keep: bool = True,
    sinks: Mapping[str, DecisionSink] | None = None,
) -> dict[str, RunResult]:
    """Folds every policy over one pass of `events`; results by the names of `policies`.

    `total` (or a function giving it once the source knows) sizes the progress bar.

    With `keep=False` decisions and handoffs are only counted and passed to `sinks` (by policy
    name), so a month of traffic does not have to fit in memory; verdicts are kept either way.
    """
    if not policies:
        raise UsageError("no policy to run")
    inputs = Inputs()
    runners = [
        _Runner(policy, inputs, keep, (sinks or {}).get(name)) for name, policy in policies.items()
    ]
    started = time.perf_counter()
    known = total if isinstance(total, int) else None
    bar = tqdm(
        total=known,
        unit="ev",
        unit_scale=True,
        disable=not progress,
        file=sys.stderr,
        mininterval=0.5,
    )
    add = inputs.add
    feeds = [runner.feed for runner in runners]
    count = 0
    try:
        for event in events:
            add(event)
            for feed in feeds:
                feed(event)
            count += 1
            if count % _PROGRESS_BLOCK == 0:
                if bar.total is None and callable(total):
                    # A Kafka source knows its size only once it has looked up the offsets.
                    bar.total = total()
                bar.update(_PROGRESS_BLOCK)
        bar.update(count % _PROGRESS_BLOCK)
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    results = {}
    for name, runner in zip(policies, runners, strict=True):
        runner.result.seconds = seconds
        results[name] = runner.result
    return results


def run_policy(
    events: Iterable[Event],
    policy: Policy,
    progress: bool = False,
    *,
    total: int | Callable[[], int | None] | None = None,
    keep: bool = True,
    sink: DecisionSink | None = None,
) -> RunResult:
    """The decisions, handoffs and final per-customer states of one policy over `events`.

    Events are folded in the order given, as the worker folds its partitions: pass them in the
    order the worker consumed them to get its decisions, field by field.
    """
    sinks = {"policy": sink} if sink is not None else None
    return run_policies(events, {"policy": policy}, progress, total=total, keep=keep, sinks=sinks)[
        "policy"
    ]
