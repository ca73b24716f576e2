"""Run cases through the worker's own `step` and judge what it decided against each expectation.

A failing case says which expectation failed and shows the decisions actually made, with the
triggers, reasons and evidence that led to them, so the reader sees why without a debugger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from stream.core.decision import Decision, HandoffPackage, TriggerHit
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.core.step import step
from stream.core.vocabulary import ACTION_RANK
from stream.errors import EXIT_FAILED, EscalationError
from stream.policytest.build import case_events, conversation_id, message_id
from stream.policytest.load import LoadedCase
from stream.policytest.model import Case, Expect, TurnExpect


class CasesFailedError(EscalationError):
    """Cases that ran and did not get their decision: exit 1, the input was fine, the policy not."""

    exit_code: ClassVar[int] = EXIT_FAILED


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision on the case's conversation and the turn it was made on."""

    turn: int
    decision: Decision


@dataclass(slots=True)
class CaseResult:
    loaded: LoadedCase
    policy_version: str
    decided: list[Decided] = field(default_factory=list)
    handoff: HandoffPackage | None = None
    failures: list[str] = field(default_factory=list)
    error: str | None = None
    # How the policy read each customer turn (markers, score), to explain a sentiment miss.
    signals: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """PASS; FAIL; XFAIL (a known failure that still fails); XPASS (one that now passes)."""
        failed = bool(self.failures) or self.error is not None
        if self.loaded.case.known_failure is None:
            return "FAIL" if failed else "PASS"
        return "XFAIL" if failed else "XPASS"

    @property
    def passed(self) -> bool:
        """Whether the suite stays green on this case."""
        return self.status in ("PASS", "XFAIL")

    @property
    def action(self) -> str:
        """The furthest the conversation went."""
        decisive = self.decisive
        return decisive.decision.action if decisive is not None else "continue"

    @property
    def decisive(self) -> Decided | None:
        """The first decision that reached the furthest action (None: it only continued)."""
        best: Decided | None = None
        for item in self.decided:
            rank = ACTION_RANK[item.decision.action]
            if rank > 0 and (best is None or rank > ACTION_RANK[best.decision.action]):
                best = item
        return best


def run_cases(cases: Iterable[LoadedCase], policy: Policy) -> list[CaseResult]:
    return [run_case(loaded, policy) for loaded in cases]


def run_case(loaded: LoadedCase, policy: Policy) -> CaseResult:
    """Fold the case's events through `step` from an empty state and check the expectations."""
    case = loaded.case
    result = CaseResult(loaded, policy.version)
    conversation = conversation_id(case)
    state: CustomerState | None = None
    for item in case_events(case):
        try:
            outcome = step(state, item.event, policy)
        except Exception as exc:  # a decision-core bug fails the case; it never stops the suite
            result.error = (
                f"step raised {type(exc).__name__}: {exc} on the {item.event.type} event "
                f"{item.event.event_id}"
            )
            return result
        state = outcome.state
        turn = item.turn if item.turn is not None else 0
        for decision in outcome.decisions:
            if decision.conversation_id == conversation:
                result.decided.append(Decided(turn, decision))
        for package in outcome.handoffs:
            if package.conversation_id == conversation:
                result.handoff = package
    result.failures = judge(case, result, policy)
    if state is not None and result.failures:
        result.signals = _signals(case, state, conversation)
    return result


def _signals(case: Case, state: CustomerState, conversation: str) -> list[str]:
    conv = state.conversations.get(conversation)
    if conv is None:
        return []
    numbers = {message_id(case, n): n for n in range(1, len(case.turns) + 1)}
    lines: list[str] = []
    for turn in conv.turns:
        if turn.role != "customer":
            continue
        markers = getattr(turn, "markers", ())
        kinds = ", ".join(f"{kind} {text!r}" for kind, text in markers) or "no marker"
        signal = getattr(turn, "signal", None)
        judged = f", turn signal {signal:.2f}" if signal is not None else ""
        score = getattr(turn, "sentiment", None)
        scored = f", upstream score {score:g}" if score is not None else ""
        lines.append(f"turn {numbers.get(turn.message_id, '?')}: {kinds}{judged}{scored}")
    return lines


def _names(hits: Iterable[TriggerHit]) -> tuple[set[str], set[str]]:
    triggers: set[str] = set()
    rules: set[str] = set()
    for hit in hits:
        triggers.add(hit.trigger)
        rules.add(hit.rule)
    return triggers, rules


def _listed(names: Iterable[str]) -> str:
    items = sorted(names)
    return ", ".join(items) if items else "none"


def judge(case: Case, result: CaseResult, policy: Policy) -> list[str]:
    failures = _judge_case(case.expect, result, policy)
    for number, turn in enumerate(case.turns, 1):
        if turn.expect is not None:
            failures.extend(_judge_turn(number, turn.expect, result))
    return failures


def _unknown_rules(rules: Iterable[str], policy: Policy) -> list[str]:
    known = {rule.name for rule in policy.rules}
    return [
        f"rule {rule} is not in policy {policy.version}: it has no operator rule "
        f"{rule.removeprefix('rules.')!r}"
        for rule in rules
        if rule.startswith("rules.") and rule.removeprefix("rules.") not in known
    ]


def _judge_case(expect: Expect, result: CaseResult, policy: Policy) -> list[str]:
    failures = _unknown_rules(expect.rules, policy)
    decisive = result.decisive
    actual = result.action
    where = f" at turn {decisive.turn}" if decisive is not None else ""
    if actual != expect.action:
        failures.append(f"expected {expect.action}, the policy decided {actual}{where}")
    elif decisive is not None:
        turn = decisive.turn
        if expect.by_turn is not None and turn > expect.by_turn:
            failures.append(f"expected {expect.action} by turn {expect.by_turn}, it came at {turn}")
        if expect.not_before is not None and turn < expect.not_before:
            failures.append(
                f"expected {expect.action} not before turn {expect.not_before}, it came at {turn}"
            )
        failures.extend(_check_hits(expect, decisive.decision, f"the {actual}{where}"))
        if expect.priority is not None and decisive.decision.priority != expect.priority:
            failures.append(
                f"expected priority {expect.priority}, the {actual} has "
                f"{decisive.decision.priority}"
            )
    every = [hit for item in result.decided for hit in item.decision.triggers]
    if result.handoff is not None:
        every.extend(result.handoff.reasons)
    failures.extend(_unwanted(expect, every, where=lambda name: f" ({_fired_at(result, name)})"))
    counts = {"escalate": 0, "offer_transfer": 0}
    for item in result.decided:
        if item.decision.action in counts:
            counts[item.decision.action] += 1
    if expect.escalations is not None and counts["escalate"] != expect.escalations:
        failures.append(
            f"expected {expect.escalations} escalation(s), the policy made {counts['escalate']}"
        )
    offers = counts["offer_transfer"]
    if expect.offers is not None and offers != expect.offers:
        failures.append(f"expected {expect.offers} transfer offer(s), the policy made {offers}")
    if expect.handoff is not None:
        failures.extend(_check_handoff(expect, result.handoff))
    return failures


def _fired_at(result: CaseResult, trigger: str) -> str:
    turns = sorted(
        {
            item.turn
            for item in result.decided
            if any(hit.trigger == trigger for hit in item.decision.triggers)
        }
    )
    if turns:
        return "turn " + ", ".join(str(turn) for turn in turns)
    return "in a handoff revision"


def _unwanted(
    expect: Expect | TurnExpect,
    hits: Iterable[TriggerHit],
    where: Callable[[str], str] = lambda name: "",
) -> list[str]:
    """A failure for each trigger in `not_triggers` and rule in `not_rules` that fired."""
    triggers, rules = _names(hits)
    return [
        f"trigger {name} must not fire, but it did{where(name)}"
        for name in expect.not_triggers
        if name in triggers
    ] + [f"rule {name} must not fire, but it did" for name in expect.not_rules if name in rules]


def _check_hits(expect: Expect | TurnExpect, decision: Decision, what: str) -> list[str]:
    failures: list[str] = []
    triggers, rules = _names(decision.triggers)
    missing = [name for name in expect.triggers if name not in triggers]
    if missing:
        failures.append(
            f"expected trigger(s) {_listed(missing)} on {what}; it names {_listed(triggers)}"
        )
    missing = [name for name in expect.rules if name not in rules]
    if missing:
        failures.append(f"expected rule(s) {_listed(missing)} on {what}; it names {_listed(rules)}")
    if expect.hold_action is not None and decision.hold_action != expect.hold_action:
        held = "holds" if decision.hold_action else "does not hold"
        failures.append(f"expected hold_action {expect.hold_action}; {what} {held} the action")
    return failures


def _check_handoff(expect: Expect, package: HandoffPackage | None) -> list[str]:
    wanted = expect.handoff
    assert wanted is not None
    if package is None:
        return ["expected a handoff package, none was built"]
    failures: list[str] = []
    ticket = package.ticket
    if wanted.queue is not None and ticket.queue != wanted.queue:
        failures.append(f"expected handoff queue {wanted.queue}, it is {ticket.queue}")
    if wanted.priority is not None and ticket.priority != wanted.priority:
        failures.append(f"expected handoff priority {wanted.priority}, it is {ticket.priority}")
    missing = [flag for flag in wanted.flags if flag not in package.relevant_flags]
    if missing:
        failures.append(
            f"expected handoff flag(s) {_listed(missing)}; it shows "
            f"{_listed(package.relevant_flags)}"
        )
    if wanted.prior_contacts is not None and len(package.prior_contacts) != wanted.prior_contacts:
        failures.append(
            f"expected {wanted.prior_contacts} earlier contact(s) in the handoff, it has "
            f"{len(package.prior_contacts)}"
        )
    missing = [tag for tag in wanted.tags if tag not in ticket.tags]
    if missing:
        failures.append(f"expected ticket tag(s) {_listed(missing)}; it has {_listed(ticket.tags)}")
    if (
        wanted.message_contains is not None
        and wanted.message_contains.lower() not in package.customer_message.lower()
    ):
        failures.append(
            f"expected the customer message to contain {wanted.message_contains!r}; it was "
            f"{package.customer_message!r}"
        )
    return failures


def _judge_turn(number: int, expect: TurnExpect, result: CaseResult) -> list[str]:
    on_turn = [item.decision for item in result.decided if item.turn == number]
    if not on_turn:
        actual = "none"
        decision: Decision | None = None
    else:
        decision = max(on_turn, key=lambda d: ACTION_RANK[d.action])
        actual = decision.action
    if actual != expect.action:
        fired = ""
        if decision is not None and decision.triggers:
            fired = f" ({_listed(_names(decision.triggers)[1])})"
        return [f"turn {number}: expected {expect.action}, the policy decided {actual}{fired}"]
    failures: list[str] = []
    if decision is not None:
        failures.extend(
            f"turn {number}: {problem}"
            for problem in _check_hits(expect, decision, f"the {actual}")
        )
        failures.extend(
            f"turn {number}: {problem}" for problem in _unwanted(expect, decision.triggers)
        )
    return failures


def explain(result: CaseResult) -> list[str]:
    """The decisions actually made on the conversation, with their evidence, for a failed case."""
    lines: list[str] = []
    meaningful = [item for item in result.decided if item.decision.action != "continue"]
    if not meaningful:
        turns = sorted({item.turn for item in result.decided})
        lines.append(
            f"decided: continue on every turn ({len(turns)} decision(s)); no trigger fired"
            if result.decided
            else "decided: nothing (no decision was made on this conversation)"
        )
        for item in result.decided:
            # The limits an action was judged against show why a boundary did not fire.
            shown = [
                f"{name} {value:g}"
                for name, value in item.decision.thresholds.items()
                if not name.startswith("sentiment.")
            ]
            if shown:
                lines.append(f"  turn {item.turn}: continue under {', '.join(shown)}")
        if result.signals:
            lines.append("customer turns as the policy read them:")
            lines.extend(f"  {line}" for line in result.signals)
        return lines
    for item in meaningful:
        decision = item.decision
        held = ", action held" if decision.hold_action else ""
        lines.append(
            f"decided at turn {item.turn}: {decision.action} (priority {decision.priority}{held})"
        )
        for hit in decision.triggers:
            lines.append(f"  [{hit.rule}] {hit.reason}")
            for evidence in hit.evidence[:4]:
                lines.append(f"    - {evidence.detail}")
    if result.signals:
        lines.append("customer turns as the policy read them:")
        lines.extend(f"  {line}" for line in result.signals)
    if result.handoff is not None:
        ticket = result.handoff.ticket
        lines.append(
            f"handoff: queue {ticket.queue}, priority {ticket.priority}, flags "
            f"{_listed(result.handoff.relevant_flags)}, "
            f"{len(result.handoff.prior_contacts)} earlier contact(s), "
            f"revision {result.handoff.revision}"
        )
    return lines


def summary_line(results: Sequence[CaseResult]) -> str:
    count = {status: 0 for status in ("PASS", "FAIL", "XFAIL", "XPASS")}
    for result in results:
        count[result.status] += 1
    line = f"{len(results)} case(s): {count['PASS']} passed, {count['FAIL']} failed"
    if count["XFAIL"]:
        line += f", {count['XFAIL']} known failure(s)"
    if count["XPASS"]:
        line += f", {count['XPASS']} known failure(s) now passing (remove known_failure)"
    return line
