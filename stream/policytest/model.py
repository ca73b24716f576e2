"""The policy test case: one conversation written down with the decision it must get.

A case file is YAML, `{description?, cases: [...]}`; docs/policy-tests.md is the reference. The
models refuse unknown keys, so a typo cannot silently drop an expectation, and every problem is
reported against the field it is about.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass

from stream.core.events import AccountFacts
from stream.core.vocabulary import TRIGGER_NAMES, Action, Priority
from stream.policytest.timing import RelativeTime, TimeFormatError, parse_relative

# `none`: no decision at all on the turn.
TurnAction: TypeAlias = Literal[Action, "none"]
ROLE_KEYS: Final[dict[str, str]] = {
    "customer": "customer",
    "ai": "ai_agent",
    "human": "human_agent",
    "system": "system",
}
# Rule names are `<family>.<rule>`; operator rules are `rules.<name>`. The rule itself is checked
# against the policy when the case runs, since a candidate policy may add or drop operator rules.
RULE_FAMILIES: Final[tuple[str, ...]] = (
    "confidence",
    "sentiment",
    "explicit_request",
    "boundary",
    "repeat_contact",
    "rules",
)


class FieldProblem(ValueError):
    """Raised in a model validator to name the field below the model that is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _time(value: Any) -> RelativeTime:
    if isinstance(value, RelativeTime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a relative time such as '3 days ago' or '+20 s', got {value!r}")
    try:
        return parse_relative(value)
    except TimeFormatError as exc:
        raise ValueError(str(exc)) from None


def _trigger(value: str) -> str:
    if value not in TRIGGER_NAMES:
        raise ValueError(f"unknown trigger {value!r}; triggers are {', '.join(TRIGGER_NAMES)}")
    return value


def _rule(value: str) -> str:
    family, dot, rest = value.partition(".")
    if not dot or not rest or family not in RULE_FAMILIES:
        raise ValueError(
            f"unknown rule {value!r}; a rule is <family>.<name> with family one of "
            f"{', '.join(RULE_FAMILIES)} (e.g. boundary.refund_limit, rules.disputed_billing)"
        )
    return value


RelTime = Annotated[RelativeTime, BeforeValidator(_time)]
TriggerName = Annotated[str, AfterValidator(_trigger)]
RuleName = Annotated[str, AfterValidator(_rule)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class CaseAccount(AccountFacts):
    """The account snapshot the customer has when the conversation starts.

    Its fields are the core's own account facts; a hand-written file is held to a little more
    than the Avro schema asks: no empty names, a real boolean, no negative count.
    """

    at: RelTime | None = None

    @field_validator("tier", "currency")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value:
            raise ValueError("String should have at least 1 character")
        return value

    @field_validator("flags")
    @classmethod
    def _flags_named(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not all(value):
            raise ValueError("a flag is a non-empty string")
        return value

    @field_validator("enterprise_contract", mode="before")
    @classmethod
    def _strict_bool(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError("Input should be a valid boolean")
        return value

    @field_validator("open_cases")
    @classmethod
    def _count(cls, value: int) -> int:
        if value < 0:
            raise ValueError("Input should be greater than or equal to 0")
        return value

    @model_validator(mode="after")
    def _before_start(self) -> CaseAccount:
        if self.at is not None and self.at.anchor != "ago":
            raise FieldProblem("at", "the account snapshot is dated before the start: '2 days ago'")
        return self


class PriorContact(_Model):
    """An earlier contact of the same customer, e.g. `{at: 3 days ago, issue: billing:inv-1}`."""

    at: RelTime
    issue: NonEmpty
    action: Literal["opened", "reopened"] = "opened"
    conversation: NonEmpty | None = None
    category: str | None = None
    channel: NonEmpty = "chat"

    @model_validator(mode="after")
    def _before_start(self) -> PriorContact:
        if self.at.anchor != "ago":
            raise FieldProblem("at", "an earlier contact is dated before the start: '3 days ago'")
        return self


class CaseContact(_Model):
    """The contact that opens this conversation (turn 0), which repeat contact judges."""

    issue: NonEmpty
    action: Literal["opened", "reopened"] = "opened"
    category: str | None = None


class CaseAction(_Model):
    """The action an AI turn proposes."""

    type: NonEmpty
    consequence_class: NonEmpty = Field(alias="class")
    amount: float | None = None
    currency: str | None = None
    target: str | None = None


class _Checks(_Model):
    triggers: tuple[TriggerName, ...] = ()
    rules: tuple[RuleName, ...] = ()
    not_triggers: tuple[TriggerName, ...] = ()
    not_rules: tuple[RuleName, ...] = ()
    hold_action: StrictBool | None = None

    def _check_names(self) -> None:
        both = set(self.triggers) & set(self.not_triggers)
        if both:
            raise FieldProblem("not_triggers", f"{sorted(both)[0]!r} is also in triggers")
        both = set(self.rules) & set(self.not_rules)
        if both:
            raise FieldProblem("not_rules", f"{sorted(both)[0]!r} is also in rules")


def _turn_expect(value: Any) -> Any:
    return {"action": value} if isinstance(value, str) else value


class TurnExpect(_Checks):
    """What the decision on one turn (its message and its sentiment score) must be.

    `none` means no decision at all: the conversation is already escalated or a person owns it.
    """

    action: TurnAction

    @model_validator(mode="after")
    def _consistent(self) -> TurnExpect:
        self._check_names()
        if self.action in ("continue", "none") and (self.triggers or self.rules):
            raise FieldProblem("triggers", f"a {self.action} decision names no trigger")
        return self


class CaseTurn(_Model):
    """One turn: exactly one of customer / ai / human / system with what was said."""

    customer: str | None = None
    ai: str | None = None
    human: str | None = None
    system: str | None = None
    at: RelTime | None = None
    category: str | None = None
    # Customer turns: a score from the upstream sentiment model (-1..1), sent after the message.
    sentiment: float | None = Field(default=None, ge=-1.0, le=1.0)
    # AI turns: the classified intent, its confidence and the proposed action.
    intent: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    action: CaseAction | None = None
    attempted: StrictBool = False
    failed: StrictBool = False
    expect: Annotated[TurnExpect | None, BeforeValidator(_turn_expect)] = None

    @property
    def role_key(self) -> str:
        for key in ROLE_KEYS:
            if getattr(self, key) is not None:
                return key
        raise AssertionError("validated turns have a role")

    @property
    def role(self) -> str:
        return ROLE_KEYS[self.role_key]

    @property
    def text(self) -> str:
        value: str = getattr(self, self.role_key)
        return value

    @model_validator(mode="after")
    def _one_speaker(self) -> CaseTurn:
        speakers = [key for key in ROLE_KEYS if getattr(self, key) is not None]
        if len(speakers) != 1:
            raise FieldProblem(
                "customer" if not speakers else speakers[1],
                "a turn has exactly one of customer, ai, human, system (who speaks, and what "
                f"they say); found {len(speakers)}",
            )
        role = speakers[0]
        if self.at is not None and self.at.anchor == "ago":
            raise FieldProblem(
                "at", "a turn is after the start: '+20 s' (after the previous turn) or '2 min'"
            )
        if role != "customer" and self.sentiment is not None:
            raise FieldProblem("sentiment", "only customer turns carry a sentiment score")
        if role != "ai":
            for name in ("intent", "confidence", "action"):
                if getattr(self, name) is not None:
                    raise FieldProblem(name, f"only AI turns carry {name}")
            for name in ("attempted", "failed"):
                if getattr(self, name):
                    raise FieldProblem(name, f"only AI turns carry {name}")
        return self


class HandoffExpect(_Model):
    """What the handoff package (its latest revision) must carry."""

    queue: NonEmpty | None = None
    priority: Priority | None = None
    flags: tuple[NonEmpty, ...] = ()
    prior_contacts: int | None = Field(default=None, ge=0)
    tags: tuple[NonEmpty, ...] = ()
    message_contains: NonEmpty | None = None


class Expect(_Checks):
    """What must happen in the conversation as a whole.

    `action` is the furthest it gets (escalate over offer_transfer over continue); the decision
    that first reaches it is the decisive one, which `by_turn`, `not_before`, `triggers`, `rules`,
    `hold_action` and `priority` are about. `not_triggers` and `not_rules` apply to every decision.
    """

    action: Action
    by_turn: int | None = Field(default=None, ge=0)
    not_before: int | None = Field(default=None, ge=0)
    escalations: int | None = Field(default=None, ge=0)
    offers: int | None = Field(default=None, ge=0)
    priority: Priority | None = None
    handoff: HandoffExpect | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        self._check_names()
        if self.action == "continue":
            for name in ("by_turn", "not_before", "priority", "hold_action"):
                if getattr(self, name) is not None:
                    raise FieldProblem(name, "a conversation that continues has no decisive turn")
            if self.triggers or self.rules:
                raise FieldProblem("triggers", "a conversation that continues names no trigger")
        if self.handoff is not None and self.action != "escalate":
            raise FieldProblem("handoff", "only an escalation has a handoff package")
        if (
            self.by_turn is not None
            and self.not_before is not None
            and self.not_before > self.by_turn
        ):
            raise FieldProblem(
                "not_before", f"turn {self.not_before} is after by_turn {self.by_turn}"
            )
        return self


class Case(_Model):
    """One named conversation and what the policy must decide on it."""

    name: NonEmpty
    description: str = ""
    customer: NonEmpty | None = None
    conversation: NonEmpty | None = None
    category: str | None = None
    channel: NonEmpty = "chat"
    account: CaseAccount | None = None
    contacts: tuple[PriorContact, ...] = ()
    contact: CaseContact | None = None
    turns: tuple[CaseTurn, ...] = Field(min_length=1)
    expect: Expect
    # A case the policy is known to get wrong, with why: it is reported, not failed, until it
    # passes; then the suite fails until the marker is removed, so the marker cannot go stale.
    known_failure: NonEmpty | None = None

    @model_validator(mode="after")
    def _turns_exist(self) -> Case:
        count = len(self.turns)
        first = 0 if self.contact is not None else 1
        for name in ("by_turn", "not_before"):
            turn = getattr(self.expect, name)
            if turn is not None and not first <= turn <= count:
                opening = (
                    "0 is the contact that opens it"
                    if self.contact is not None
                    else "turn 0 needs a `contact`"
                )
                raise FieldProblem(
                    f"expect.{name}",
                    f"turn {turn} is out of range: the case has {count} turn(s), numbered 1 to "
                    f"{count} ({opening})",
                )
        return self


class CaseFile(_Model):
    description: str = ""
    cases: tuple[Case, ...] = Field(min_length=1)


def field_names() -> frozenset[str]:
    """Every key a case file may use, for 'did you mean' hints on a typo."""
    names: set[str] = set()
    for model in (
        CaseFile,
        Case,
        CaseAccount,
        PriorContact,
        CaseContact,
        CaseAction,
        CaseTurn,
        TurnExpect,
        HandoffExpect,
        Expect,
    ):
        model_fields: dict[str, Any] = getattr(model, "__pydantic_fields__", {})
        for name, info in model_fields.items():
            names.add(info.alias or name)
    return frozenset(names)
