"""A simulated world with a known answer: ticket outcomes that follow from the decisions of the
policy that ran, so a calibration proposal can be tried in the next month as a real experiment.

Documented in docs/simulator.md. In short: the replay's conversations (real text, synthetic
everything else, no outcomes of its own) are folded through `step` under the given policy as they
are generated. Each conversation has a latent *need* for a human, fixed by the seed and never by a
policy: each proposed AI action goes wrong with a chance that falls with its confidence (a logistic
curve per consequence class), a refund above the authority limit goes wrong more often, and some
conversations need a person for reasons no trigger sees (more often when the customer is
frustrated). When the conversation closes, its outcome follows from what the policy did:

- escalated: a human takes it; a needed case takes real work (long handle time, sometimes special
  expertise), a case that was not needed is settled in well under two minutes;
- offered a transfer: the customer accepts with a fixed chance and is then handled as escalated;
- left to the AI: a needed case comes back (reopened within 48 h) with a chance that is higher for
  a frustrated customer; a case that was not needed is resolved, with a little noise.

Every random draw of a conversation comes from its own seeded generator in a fixed order, whatever
the policy decides, so two policies run on the same world see the same customers and the same
latent truth (common random numbers): their difference is the policies' doing.

From the curve the world knows the confidence threshold per class that minimises the expected
`false_weight * false + missed_weight * missed` escalations, given the rest of the policy
(`optimum_threshold`).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from stream.core.events import ContactEvent, Event, MessageEvent, OutcomeEvent
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.core.step import step
from stream.core.threshold_sweep import escalates_at, lowest_confidence, without_threshold
from stream.core.vocabulary import ACTION_RANK
from stream.errors import UsageError
from stream.replay.config import HOUR_MS, SECOND_MS, ReplayConfig, check_shares, seeded_random
from stream.replay.lexicon import lexicon_score
from stream.replay.outcomes import ticket_record
from stream.replay.schedule import generate

# A customer turn this negative counts towards frustration; two such turns make a conversation
# frustrated.
_FRUSTRATED_SCORE: Final[float] = -0.5
_FRUSTRATED_TURNS: Final[int] = 2


@dataclass(frozen=True, slots=True)
class Curve:
    """The chance that an AI action of one consequence class goes wrong at confidence x:
    `1 / (1 + exp((x - midpoint) / width))`, falling from 1 towards 0 as confidence rises."""

    midpoint: float
    width: float

    def __call__(self, confidence: float) -> float:
        return float(1.0 / (1.0 + math.exp((confidence - self.midpoint) / self.width)))


@dataclass(frozen=True, slots=True)
class World:
    """Everything latent about the simulated world; defaults documented in docs/simulator.md."""

    curves: dict[str, Curve] = field(
        default_factory=lambda: {
            "financial": Curve(0.80, 0.035),
            "account_change": Curve(0.72, 0.04),
            "informational": Curve(0.35, 0.05),
        }
    )
    # A refund above this amount, taken by the AI, goes wrong with this extra chance.
    refund_authority: float = 100.0
    large_refund_error: float = 0.5
    # Needs a person for a reason no trigger sees; more so when the customer is frustrated.
    hidden_need: float = 0.02
    hidden_need_frustrated: float = 0.20
    # A needed case left to the AI is reopened within 48 h with this chance.
    reopen_needed: float = 0.80
    reopen_needed_frustrated: float = 0.95
    # A case that was not needed comes back anyway.
    reopen_noise: float = 0.01
    offer_accepted: float = 0.6
    # The AI's confidence on actions of these classes is drawn by the world, uniformly from
    # `confidence_range`, so that every threshold has cases on both sides of it (the replay's
    # own confidences crowd near 0.9).
    resample_classes: tuple[str, ...] = ("financial", "account_change")
    confidence_range: tuple[float, float] = (0.5, 1.0)
    csat_share: float = 0.5
    false_weight: float = 1.0
    missed_weight: float = 1.0

    def __post_init__(self) -> None:
        check_shares(
            self,
            "large_refund_error",
            "hidden_need",
            "hidden_need_frustrated",
            "reopen_needed",
            "reopen_needed_frustrated",
            "reopen_noise",
            "offer_accepted",
            "csat_share",
        )
        for klass, curve in self.curves.items():
            if curve.width <= 0:
                raise UsageError(f"World.curves.{klass}.width: must be above 0")


@dataclass(slots=True)
class _Conversation:
    """What the world knows about one conversation while it runs."""

    customer_id: str
    # Chance that nothing goes wrong, multiplied over its AI actions.
    fine: float = 1.0
    large_refund: bool = False
    negative_turns: int = 0
    action: str = "continue"
    escalation_id: str | None = None
    offer_id: str | None = None
    # (class, confidence) of every proposed action, for the optimum.
    actions: list[tuple[str, float]] = field(default_factory=list)

    @property
    def frustrated(self) -> bool:
        return self.negative_turns >= _FRUSTRATED_TURNS


def need_chance(conv: _Conversation, world: World) -> float:
    """The latent chance that this conversation needs a human."""
    hidden = world.hidden_need_frustrated if conv.frustrated else world.hidden_need
    fine = conv.fine * (1.0 - hidden)
    if conv.large_refund:
        fine *= 1.0 - world.large_refund_error
    return 1.0 - fine


def _lognormal(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    return round(min(max(rng.lognormvariate(math.log(median), sigma), low), high), 1)


def outcomes_of(
    conversation_id: str, conv: _Conversation, closed: int, world: World, seed: int
) -> list[OutcomeEvent]:
    """The ticket outcome(s) of a closed conversation under what the policy did; a reopen is a
    second record of the same ticket at the reopen time."""
    rng = seeded_random(seed, "world", conversation_id)
    # Every draw is taken, in this order, whatever the decision: common random numbers.
    u_need, u_offer, u_reopen = rng.random(), rng.random(), rng.random()
    long_handle = _lognormal(rng, 600.0, 0.6, 150.0, 5400.0)
    short_handle = _lognormal(rng, 50.0, 0.4, 15.0, 110.0)
    expertise = rng.random() < 0.35
    reopen_after = rng.randint(HOUR_MS, 40 * HOUR_MS)
    ai_delay = rng.randint(2 * SECOND_MS, 30 * SECOND_MS)
    u_csat, csat_noise = rng.random(), rng.gauss(0.0, 0.7)

    needed = u_need < need_chance(conv, world)
    human = conv.action == "escalate" or (
        conv.offer_id is not None and u_offer < world.offer_accepted
    )
    decision_id = conv.escalation_id if conv.action == "escalate" else conv.offer_id
    reopened = False
    if human:
        handle: float | None = long_handle if needed else short_handle
        resolved_by = "human"
        special = needed and expertise
        mood = 4.4 if needed else 3.8
        delay = int((handle or 0.0) * SECOND_MS)
    else:
        handle = None
        resolved_by = "ai"
        special = False
        decision_id = None
        chance = (
            (world.reopen_needed_frustrated if conv.frustrated else world.reopen_needed)
            if needed
            else world.reopen_noise
        )
        reopened = u_reopen < chance
        mood = (1.8 if reopened else 2.6) if needed else 4.1
        delay = ai_delay
    if conv.frustrated:
        mood -= 0.5
    csat = min(5, max(1, round(mood + csat_noise))) if u_csat < world.csat_share else None
    first = ticket_record(
        conversation_id,
        conv.customer_id,
        closed + delay,
        resolved_by,
        handle=handle,
        special_expertise=special,
        csat=csat,
        decision_id=decision_id,
    )
    if not reopened:
        return [first]
    at = closed + reopen_after
    return [
        first,
        dataclasses.replace(
            first, event_id=f"out-{conversation_id}-reopened", occurred_at=at, reopened_at=at
        ),
    ]


@dataclass(slots=True)
class Truth:
    """What the world knows and a review cannot see: per conversation, the need and what
    happened; filled while `simulate` runs."""

    conversations: dict[str, _Conversation] = field(default_factory=dict)
    needed: dict[str, bool] = field(default_factory=dict)
    false_escalations: int = 0
    missed_escalations: int = 0

    @property
    def false_plus_missed(self) -> int:
        return self.false_escalations + self.missed_escalations


def simulate(
    source: Path,
    config: ReplayConfig,
    policy: Policy,
    world: World | None = None,
    truth: Truth | None = None,
) -> Iterator[Event]:
    """The replay's events with outcomes that follow from `policy`'s decisions (module docstring),
    in event-time order; `truth`, when given, collects what the world knows."""
    world = world or World()
    truth = truth if truth is not None else Truth()
    base = generate(source, dataclasses.replace(config, outcome_share=0.0))
    states: dict[str, CustomerState] = {}
    convs = truth.conversations
    pending: list[tuple[int, int, Event]] = []
    seq = 0

    def fold(event: Event) -> None:
        result = step(states.get(event.customer_id), event, policy)
        states[event.customer_id] = result.state
        for decision in result.decisions:
            if decision.conversation_id is None:
                continue
            conv = convs.get(decision.conversation_id)
            if conv is None:
                continue
            if ACTION_RANK[decision.action] > ACTION_RANK[conv.action]:
                conv.action = decision.action
                if decision.action == "escalate":
                    conv.escalation_id = decision.decision_id
            if decision.action == "offer_transfer" and conv.offer_id is None:
                conv.offer_id = decision.decision_id

    for event in base:
        while pending and pending[0][0] <= event.occurred_at:
            due = heapq.heappop(pending)[2]
            fold(due)
            yield due
        if (
            isinstance(event, MessageEvent)
            and event.proposed_action is not None
            and event.proposed_action.consequence_class in world.resample_classes
        ):
            low, high = world.confidence_range
            drawn = seeded_random(config.seed, "confidence", event.message_id).uniform(low, high)
            event = dataclasses.replace(event, intent_confidence=round(min(drawn, 0.999), 3))
        if isinstance(event, MessageEvent):
            conv = convs.setdefault(event.conversation_id, _Conversation(event.customer_id))
            if event.role == "ai_agent" and event.proposed_action is not None:
                action = event.proposed_action
                curve = world.curves.get(action.consequence_class)
                if curve is not None and event.intent_confidence is not None:
                    conv.fine *= 1.0 - curve(event.intent_confidence)
                    conv.actions.append((action.consequence_class, event.intent_confidence))
                if (
                    action.type == "refund"
                    and action.amount is not None
                    and action.amount > world.refund_authority
                ):
                    conv.large_refund = True
            elif event.role == "customer" and lexicon_score(event.text)[0] <= _FRUSTRATED_SCORE:
                conv.negative_turns += 1
        fold(event)
        yield event
        if isinstance(event, ContactEvent) and event.action == "closed":
            ended = convs.get(event.conversation_id)
            if ended is None:
                continue
            outcomes = outcomes_of(
                event.conversation_id, ended, event.occurred_at, world, config.seed
            )
            _tally(truth, event.conversation_id, ended, outcomes, world, config.seed)
            for outcome in outcomes:
                seq += 1
                heapq.heappush(pending, (outcome.occurred_at, seq, outcome))
    while pending:
        due = heapq.heappop(pending)[2]
        fold(due)
        yield due


def _tally(
    truth: Truth,
    conversation_id: str,
    conv: _Conversation,
    outcomes: list[OutcomeEvent],
    world: World,
    seed: int,
) -> None:
    rng = seeded_random(seed, "world", conversation_id)
    needed = rng.random() < need_chance(conv, world)
    truth.needed[conversation_id] = needed
    if conv.action == "escalate" and not needed:
        truth.false_escalations += 1
    if conv.action != "escalate" and any(o.reopened_at is not None for o in outcomes):
        truth.missed_escalations += 1


def expected_cost(conversations: Iterable[tuple[_Conversation, bool]], world: World) -> float:
    """Expected weighted false plus missed escalations of conversations given whether each is
    escalated (offers accepted at the world's rate prevent the reopen)."""
    total = 0.0
    for conv, escalated in conversations:
        need = need_chance(conv, world)
        if escalated:
            total += world.false_weight * (1.0 - need)
            continue
        human = world.offer_accepted if conv.offer_id is not None else 0.0
        reopen = world.reopen_needed_frustrated if conv.frustrated else world.reopen_needed
        missed = (need * reopen + (1.0 - need) * world.reopen_noise) * (1.0 - human)
        total += world.missed_weight * missed
    return total


def optimum_threshold(
    source: Path,
    config: ReplayConfig,
    policy: Policy,
    klass: str,
    world: World | None = None,
    grid: Iterable[float] | None = None,
) -> tuple[float, dict[float, float]]:
    """The confidence threshold of `klass` that minimises the expected weighted false plus missed
    escalations in this world, the rest of `policy` as it is; and the expected cost per value.

    One run with the class's threshold at 0 says which conversations escalate anyway; a
    conversation escalates at threshold t when it does so anyway or one of its `klass` actions
    has a confidence below t.
    """
    world = world or World()
    values = list(grid) if grid is not None else [round(0.50 + 0.005 * i, 3) for i in range(99)]
    anyway_policy = without_threshold(policy, klass, f"{policy.version}~optimum")
    truth = Truth()
    for _ in simulate(source, config, anyway_policy, world, truth):
        pass
    convs = [c for c in truth.conversations.values()]
    lowest = [lowest_confidence(c.actions, klass) for c in convs]
    costs: dict[float, float] = {}
    for t in values:
        pairs = (
            (c, escalates_at(c.action == "escalate", low, t))
            for c, low in zip(convs, lowest, strict=True)
        )
        costs[t] = expected_cost(pairs, world)
    best = min(values, key=lambda t: (round(costs[t], 6), t))
    return best, costs
