"""The escalation policy: a YAML rule file validated once into a frozen, typed object.

Validation happens at load time only; `Policy.compiled` holds plain precomputed lookups so the
per-event path never touches pydantic. A policy that fails validation raises PolicyError naming
the field, and whoever loaded it keeps the policy already in force.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from stream.core.conditions import Condition, ConditionError, compile_condition, referenced_flags
from stream.core.vocabulary import (
    PRIORITY_RANK,
    TRIGGER_NAMES,
    HitAction,
    TriggerName,
)
from stream.core.vocabulary import Priority as PriorityName
from stream.errors import BadInputError

DEFAULT_POLICY_PATH: Final[Path] = Path(__file__).resolve().parents[2] / "policy" / "default.yaml"
REQUIRED_CLASSES: Final[tuple[str, ...]] = ("financial", "account_change", "informational")
BOUNDARY_MESSAGE: Final[str] = (
    "This request requires a quick review from our team — I'm connecting you now with full "
    "context from our conversation."
)


class PolicyError(BadInputError):
    """A policy that cannot be used; the message starts with the field path of the first problem."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        self.field = problems[0][0] if problems else ""
        super().__init__(
            "; ".join(f"{path}: {problem}" if path else problem for path, problem in problems)
        )


class _FieldProblem(BadInputError):
    """Raised inside validators to point below the validated field (e.g. one threshold key)."""

    def __init__(self, sub: str, problem: str) -> None:
        super().__init__(problem)
        self.sub = sub
        self.problem = problem


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConfidencePolicy(_Model):
    # Minimum intent confidence per consequence class; below it the action is held for a human.
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"financial": 0.90, "account_change": 0.85, "informational": 0.50}
    )
    # For a class the policy does not list; None means the strictest listed threshold.
    default_threshold: float | None = None
    action: HitAction = "escalate"
    # A proposed action that carries no confidence cannot be judged; holding it is the safe side.
    on_missing_confidence: Literal["escalate", "ignore"] = "escalate"

    @field_validator("thresholds")
    @classmethod
    def _check_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        for name in REQUIRED_CLASSES:
            if name not in value:
                raise _FieldProblem(name, "required consequence class is missing")
        for name, threshold in value.items():
            if not 0.0 <= threshold <= 1.0:
                raise _FieldProblem(name, "must be between 0 and 1")
        return value

    @field_validator("default_threshold")
    @classmethod
    def _check_default(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError("must be between 0 and 1")
        return value


class SentimentPolicy(_Model):
    window_turns: int = Field(default=3, ge=1, le=20)
    # Dissatisfied customer turns within the window that fire the rule; a turn counts once.
    min_turns: int = Field(default=2, ge=1, le=20)
    # Operating point on the learned turn signal (0..1): a turn scored at or above it shows
    # dissatisfaction. Chosen by grouped cross-validation on the development sets' training portion
    # (docs/signal.md); it belongs to the shipped weights (turn-signal-2).
    turn_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    # Operating points for channels whose customers write differently (public complaints on
    # social media are mostly negative); a channel not listed uses `turn_threshold`.
    turn_threshold_by_channel: dict[str, float] = Field(default_factory=lambda: {"social": 0.24})
    score_floor: float = Field(default=-0.6, ge=-1.0, le=1.0)
    consecutive_low_scores: int = Field(default=2, ge=1, le=20)
    action: HitAction = "offer_transfer"

    @field_validator("turn_threshold_by_channel")
    @classmethod
    def _check_channels(cls, value: dict[str, float]) -> dict[str, float]:
        for channel, threshold in value.items():
            if not 0.0 <= threshold <= 1.0:
                raise _FieldProblem(channel, "must be between 0 and 1")
        return value


class ExplicitRequestPolicy(_Model):
    enabled: bool = True
    action: HitAction = "escalate"


class RefundLimitPolicy(_Model):
    enabled: bool = True
    action_types: tuple[str, ...] = ("refund",)
    # Amounts strictly above the limit escalate; the limit is in the account's currency.
    limit: float = Field(default=100.0, ge=0)
    by_tier: dict[str, float] = Field(default_factory=dict)
    by_currency: dict[str, float] = Field(default_factory=dict)

    @field_validator("by_tier", "by_currency")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for key, limit in value.items():
            if limit < 0:
                raise _FieldProblem(key, "must be 0 or more")
        return value


class EmailAccessPolicy(_Model):
    enabled: bool = True
    action_types: tuple[str, ...] = ("account_email_change", "account_disclosure", "account_access")


class EnterpriseCancellationPolicy(_Model):
    enabled: bool = True
    action_types: tuple[str, ...] = ("cancel_contract",)


class BoundaryPolicy(_Model):
    refund: RefundLimitPolicy = Field(default_factory=RefundLimitPolicy)
    email_access: EmailAccessPolicy = Field(default_factory=EmailAccessPolicy)
    enterprise_cancellation: EnterpriseCancellationPolicy = Field(
        default_factory=EnterpriseCancellationPolicy
    )


class OperatorRule(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    when: dict[str, Any]
    action: HitAction = "escalate"
    priority: PriorityName | None = None
    message: str | None = None
    _condition: Condition | None = PrivateAttr(default=None)

    @field_validator("when")
    @classmethod
    def _check_when(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            compile_condition(value)
        except ConditionError as exc:
            raise _FieldProblem(exc.path, exc.problem) from exc
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._condition = compile_condition(self.when)

    @property
    def condition(self) -> Condition:
        assert self._condition is not None
        return self._condition


class RepeatContactPolicy(_Model):
    # The Nth contact (opened or reopened) on one issue key within the window escalates.
    contacts: int = Field(default=3, ge=2, le=50)
    window_days: float = Field(default=7.0, gt=0, le=90)
    action: HitAction = "escalate"


class PriorityPolicy(_Model):
    order: tuple[TriggerName, ...] = (
        "explicit_request",
        "policy_boundary",
        "repeat_contact",
        "confidence",
        "sentiment",
    )
    by_trigger: dict[TriggerName, PriorityName] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "explicit_request": "high",
            "policy_boundary": "high",
            "repeat_contact": "high",
            "confidence": "normal",
            "sentiment": "normal",
        }
    )
    raise_for_tiers: tuple[str, ...] = ("enterprise",)
    raise_for_flags: tuple[str, ...] = ("vip",)
    raise_when_triggers_at_least: int = Field(default=3, ge=2)

    @field_validator("order")
    @classmethod
    def _complete_order(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists a trigger twice")
        missing = set(TRIGGER_NAMES) - set(value)
        if missing:
            raise ValueError(f"does not list {', '.join(sorted(missing))}")
        return value


class MessagePolicy(_Model):
    policy_boundary: str = Field(default=BOUNDARY_MESSAGE, min_length=1)
    escalate: str = Field(
        default="I'm connecting you now with a member of our team, with full context from our "
        "conversation, so you won't need to repeat yourself.",
        min_length=1,
    )
    offer_transfer: str = Field(
        default="I can bring in a member of our team to help with this right away — would you "
        "like me to connect you now?",
        min_length=1,
    )


class Route(_Model):
    trigger: TriggerName | None = None
    category: str | None = None
    queue: str = Field(min_length=1)


class RoutingPolicy(_Model):
    default_queue: str = Field(default="support_general", min_length=1)
    routes: tuple[Route, ...] = ()


class HandoffPolicy(_Model):
    transcript_turns: int = Field(default=10, ge=1, le=100)
    max_revisions: int = Field(default=20, ge=0, le=1000)
    relevant_flags: tuple[str, ...] = (
        "disputed_charge",
        "recent_negative_review",
        "vip",
        "churn_risk",
    )


class StateLimits(_Model):
    max_open_conversations: int = Field(default=20, ge=1, le=1000)
    max_turns_per_conversation: int = Field(default=20, ge=1, le=1000)
    max_contacts: int = Field(default=100, ge=1, le=10000)
    max_attempts_per_conversation: int = Field(default=20, ge=1, le=1000)
    max_closed_remembered: int = Field(default=50, ge=0, le=10000)
    max_text_chars: int = Field(default=2000, ge=16, le=100000)
    # Per-field bounds of what the state stores (stream/core/bounds.py); a trimmed value ends in
    # a marker, a trimmed key also keeps a digest of the whole. Issue keys, contract ids, targets:
    max_key_chars: int = Field(default=200, ge=32, le=100000)
    # Short names: tier, plan, currency, category, intent, action type and class, each flag.
    max_label_chars: int = Field(default=64, ge=8, le=10000)
    max_flags: int = Field(default=32, ge=2, le=1000)
    max_email_chars: int = Field(default=254, ge=16, le=10000)
    # The stored state of one customer is kept under this many bytes (oldest turns are trimmed
    # first): a changelog record must stay under the broker's limit (1 MiB by default).
    max_state_bytes: int = Field(default=262_144, ge=16_384, le=900_000)
    # A conversation with no event for this long is dropped when another one opens.
    conversation_idle_hours: float = Field(default=72.0, gt=0)


class CalibrationPolicy(_Model):
    false_escalation_max_seconds: float = Field(default=120.0, gt=0)
    missed_reopen_hours: float = Field(default=48.0, gt=0)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    rule: str
    description: str
    condition: Condition
    action: HitAction
    priority: PriorityName | None
    message: str | None


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Plain lookups derived from the policy once, for the per-event path."""

    version: str
    lateness_ms: int
    thresholds: dict[str, float]
    fallback_threshold: float
    repeat_window_ms: int
    rules: tuple[CompiledRule, ...]
    trigger_order: dict[str, int]
    trigger_priority: dict[str, int]
    raise_tiers: frozenset[str]
    raise_flags: frozenset[str]
    relevant_flags: frozenset[str]
    customer_thresholds: dict[str, float]
    contact_thresholds: dict[str, float]
    refund_types: frozenset[str]
    email_types: frozenset[str]
    cancel_types: frozenset[str]
    idle_ms: int


class Policy(_Model):
    version: str = Field(min_length=1)
    # Events older than the customer's watermark of their own type (input stream) minus this still
    # update state, but do not fire window triggers (repeat contact, sentiment) retroactively.
    lateness_seconds: int = Field(default=3600, ge=0, le=7 * 24 * 3600)
    confidence: ConfidencePolicy = Field(default_factory=ConfidencePolicy)
    sentiment: SentimentPolicy = Field(default_factory=SentimentPolicy)
    explicit_request: ExplicitRequestPolicy = Field(default_factory=ExplicitRequestPolicy)
    boundaries: BoundaryPolicy = Field(default_factory=BoundaryPolicy)
    rules: tuple[OperatorRule, ...] = ()
    repeat_contact: RepeatContactPolicy = Field(default_factory=RepeatContactPolicy)
    priorities: PriorityPolicy = Field(default_factory=PriorityPolicy)
    messages: MessagePolicy = Field(default_factory=MessagePolicy)
    routing: RoutingPolicy = Field(default_factory=RoutingPolicy)
    handoff: HandoffPolicy = Field(default_factory=HandoffPolicy)
    state: StateLimits = Field(default_factory=StateLimits)
    calibration: CalibrationPolicy = Field(default_factory=CalibrationPolicy)
    _compiled: CompiledPolicy | None = PrivateAttr(default=None)

    @field_validator("rules")
    @classmethod
    def _unique_rule_names(cls, value: tuple[OperatorRule, ...]) -> tuple[OperatorRule, ...]:
        seen: set[str] = set()
        for index, rule in enumerate(value):
            if rule.name in seen:
                raise _FieldProblem(f"[{index}].name", f"duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        turns = self.state.max_turns_per_conversation
        if self.sentiment.window_turns > turns:
            raise _FieldProblem(
                "sentiment.window_turns", f"exceeds state.max_turns_per_conversation ({turns})"
            )
        if self.sentiment.min_turns > self.sentiment.window_turns:
            raise _FieldProblem(
                "sentiment.min_turns",
                f"exceeds sentiment.window_turns ({self.sentiment.window_turns}); never fires",
            )
        if self.sentiment.consecutive_low_scores > turns:
            raise _FieldProblem(
                "sentiment.consecutive_low_scores",
                f"exceeds state.max_turns_per_conversation ({turns})",
            )
        if self.handoff.transcript_turns > turns:
            raise _FieldProblem(
                "handoff.transcript_turns", f"exceeds state.max_turns_per_conversation ({turns})"
            )
        if self.repeat_contact.contacts > self.state.max_contacts:
            raise _FieldProblem("repeat_contact.contacts", "exceeds state.max_contacts")
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._compiled = _compile(self)

    @property
    def compiled(self) -> CompiledPolicy:
        # Read the private slot directly: pydantic's generic private-attribute lookup costs
        # microseconds, and the per-event path asks for this many times.
        private = self.__pydantic_private__
        assert private is not None
        compiled: CompiledPolicy = private["_compiled"]
        return compiled


def _compile(policy: Policy) -> CompiledPolicy:
    thresholds = dict(policy.confidence.thresholds)
    fallback = policy.confidence.default_threshold
    if fallback is None:
        fallback = max(thresholds.values())
    rules = tuple(
        CompiledRule(
            name=rule.name,
            rule=f"rules.{rule.name}",
            description=rule.description,
            condition=rule.condition,
            action=rule.action,
            priority=rule.priority,
            message=rule.message,
        )
        for rule in policy.rules
    )
    flags = set(policy.handoff.relevant_flags)
    for rule in policy.rules:
        flags |= referenced_flags(rule.condition)
    sentiment = policy.sentiment
    repeat = policy.repeat_contact
    by_trigger: dict[str, str] = {k: v for k, v in policy.priorities.by_trigger.items()}
    return CompiledPolicy(
        version=policy.version,
        lateness_ms=policy.lateness_seconds * 1000,
        thresholds=thresholds,
        fallback_threshold=fallback,
        repeat_window_ms=int(round(repeat.window_days * 86_400_000)),
        rules=rules,
        # A failed check lists first: the reader must see that the decision is a fail-safe one.
        trigger_order={
            "trigger_error": -1,
            **{name: index for index, name in enumerate(policy.priorities.order)},
        },
        trigger_priority={
            name: PRIORITY_RANK[by_trigger.get(name, "normal")] for name in TRIGGER_NAMES
        },
        raise_tiers=frozenset(policy.priorities.raise_for_tiers),
        raise_flags=frozenset(policy.priorities.raise_for_flags),
        relevant_flags=frozenset(flags),
        customer_thresholds={
            "sentiment.window_turns": float(sentiment.window_turns),
            "sentiment.min_turns": float(sentiment.min_turns),
            "sentiment.turn_threshold": sentiment.turn_threshold,
            **{
                f"sentiment.turn_threshold_by_channel.{channel}": threshold
                for channel, threshold in sorted(sentiment.turn_threshold_by_channel.items())
            },
            "sentiment.score_floor": sentiment.score_floor,
            "sentiment.consecutive_low_scores": float(sentiment.consecutive_low_scores),
        },
        contact_thresholds={
            "repeat_contact.contacts": float(repeat.contacts),
            "repeat_contact.window_days": float(repeat.window_days),
        },
        refund_types=frozenset(policy.boundaries.refund.action_types),
        email_types=frozenset(policy.boundaries.email_access.action_types),
        cancel_types=frozenset(policy.boundaries.enterprise_cancellation.action_types),
        idle_ms=int(round(policy.state.conversation_idle_hours * 3_600_000)),
    )


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one YAML mapping; names the key and where the second one is."""

    def __init__(self, key: Any, mark: yaml.Mark) -> None:
        super().__init__(None, None, f"duplicate key {key!r}", mark)
        self.key = key
        self.line = mark.line + 1


class UniqueKeyLoader(yaml.SafeLoader):
    """A repeated key in a YAML mapping is almost always an editing mistake that hides one of
    the two values: refuse it. Policy files and policy test cases are read with it."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise DuplicateKeyError(key, key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node))


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in exc.errors():
        path = _loc(tuple(error["loc"]))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _FieldProblem):
            sub = cause.sub
            if sub.startswith("["):
                path = f"{path}{sub}"
            elif path:
                path = f"{path}.{sub}"
            else:
                # Model-level checks name the full path themselves.
                path = sub
            problems.append((path, cause.problem))
            continue
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error["type"] == "extra_forbidden":
            message = "unknown field (typo?)"
        elif error["type"] == "missing":
            message = "required field is missing"
        problems.append((path, message))
    return problems


def parse_policy(text: str, source: str | None = None) -> Policy:
    """Validate a policy from YAML text; raises PolicyError naming the field of each problem.

    `source` (a file name) is what a YAML syntax error points at, instead of `<unicode string>`.
    """
    stream: str | io.StringIO = text
    if source is not None:
        stream = io.StringIO(text)
        stream.name = source  # PyYAML reads the name it reports from the stream
    try:
        raw = yaml.load(stream, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKeyError as exc:
        raise PolicyError([(str(exc.key), f"duplicate key (line {exc.line})")]) from exc
    except yaml.YAMLError as exc:
        raise PolicyError([("", f"not valid YAML: {exc}")]) from exc
    if not isinstance(raw, dict):
        raise PolicyError([("", "a policy file must be a YAML mapping")])
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(_problems(exc)) from None


def read_policy_text(path: str | Path) -> str:
    """The text of a policy file; PolicyError naming the file if it is unreadable or not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([("", f"cannot read policy file {path}: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(
            [("", f"policy file {path} is not UTF-8 text (byte {exc.start}: {exc.reason})")]
        ) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; errors name the file."""
    return parse_policy(read_policy_text(path), source=str(path))


def default_policy() -> Policy:
    """The shipped policy (`policy/default.yaml`), whose values are DESIGN.md's defaults table."""
    return load_policy(DEFAULT_POLICY_PATH)


def policy_warnings(policy: Policy) -> list[str]:
    """Valid but suspicious settings an operator should look at before rolling the policy out."""
    warnings: list[str] = []
    thresholds = policy.confidence.thresholds
    values = {thresholds[name] for name in REQUIRED_CLASSES}
    if len(set(thresholds.values())) == 1 or len(values) == 1:
        warnings.append(
            "confidence.thresholds: one flat threshold "
            f"({next(iter(values)):.2f}) for every consequence class is a misconfiguration: too "
            "aggressive for routine lookups and too permissive for account-level changes"
        )
    elif thresholds["financial"] < thresholds["informational"]:
        warnings.append(
            "confidence.thresholds: financial is below informational; the bar for money should "
            "be the higher one"
        )
    if not policy.explicit_request.enabled:
        warnings.append(
            "explicit_request.enabled: false leaves customers who ask for a person with the bot"
        )
    return warnings
