"""The calibration loop closed on the simulated world: simulate a month under a policy, review it,
adopt the proposal, simulate the next month under it, and so on.

Each round's month is a new world month (its own seed: new customers, confidences and latent
truth), so every review sees fresh data. Each round's policy is also scored on one fixed
evaluation month, never reviewed (held out), with the same customers and latent truth for every
policy: that score is what the round changed, free of month-to-month noise. The world's optimum
threshold is computed on that evaluation month, the rest of the policy as the loop left it.

`make calibrate-demo` runs three rounds from a financial threshold of 0.99 and from 0.60.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stream.calibration import proposal as prop
from stream.calibration.review import Period, run_review
from stream.core.events import Event
from stream.core.policy import Policy, default_policy, parse_policy
from stream.core.policy_values import with_values
from stream.replay.config import ReplayConfig
from stream.replay.world import Truth, World, optimum_threshold, simulate

MONTHS: tuple[str, ...] = ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06")
EVALUATION_MONTH = "2026-09"
EVALUATION_SEED = 9_001


@dataclass(slots=True)
class Round:
    number: int
    month: str
    threshold: float
    false_escalations: int
    missed_escalations: int
    evaluation_false_plus_missed: int
    proposed: float
    changes: list[dict[str, Any]]

    @property
    def false_plus_missed(self) -> int:
        return self.false_escalations + self.missed_escalations

    def to_record(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "month": self.month,
            "threshold": self.threshold,
            "false_escalations": self.false_escalations,
            "missed_escalations": self.missed_escalations,
            "false_plus_missed": self.false_plus_missed,
            "evaluation_false_plus_missed": self.evaluation_false_plus_missed,
            "proposed": self.proposed,
            "changes": self.changes,
        }


@dataclass(slots=True)
class Loop:
    start: float
    klass: str
    optimum: float
    rounds: list[Round] = field(default_factory=list)
    final_threshold: float = 0.0
    final_evaluation: int = 0

    def to_record(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "class": self.klass,
            "optimum": self.optimum,
            "final_threshold": self.final_threshold,
            "final_evaluation_false_plus_missed": self.final_evaluation,
            "rounds": [r.to_record() for r in self.rounds],
        }


def month_config(month: str, seed: int, conversations: int | None) -> ReplayConfig:
    period = Period.month(month)
    days = (period.end_ms - period.start_ms) / 86_400_000
    """A replay placed in `month`: conversations start over the month minus three days, so their
    outcomes and reopens (up to 40 h after the close) fall inside the month's file."""
    return ReplayConfig(
        seed=seed, conversations=conversations, start_ms=period.start_ms, days=days - 3.0
    )


def _evaluate(source: Path, config: ReplayConfig, policy: Policy, world: World) -> int:
    truth = Truth()
    for _ in simulate(source, config, policy, world, truth):
        pass
    return truth.false_plus_missed


def closed_loop(
    source: Path,
    start: float,
    *,
    rounds: int = 3,
    conversations: int = 6000,
    seed: int = 100,
    klass: str = "financial",
    world: World | None = None,
    settings: prop.Settings | None = None,
    base: Policy | None = None,
    progress: Any = None,
) -> Loop:
    """Runs `rounds` rounds of simulate, review, adopt from `klass`'s threshold at `start`."""
    world = world or World()
    settings = settings or prop.Settings()
    base = base or default_policy()
    path = f"confidence.thresholds.{klass}"
    policy = with_values(base, {path: start}, version=f"loop-{klass}-{start:.2f}")
    text = yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False)
    evaluation = month_config(EVALUATION_MONTH, EVALUATION_SEED, conversations)
    loop = Loop(start=start, klass=klass, optimum=0.0)
    for number in range(1, rounds + 1):
        month = MONTHS[(number - 1) % len(MONTHS)]
        config = month_config(month, seed + number, conversations)
        truth = Truth()
        events: Sequence[Event] = list(simulate(source, config, policy, world, truth))
        review = run_review(
            events, policy, Period.month(month), current_text=text, settings=settings
        )
        threshold = policy.confidence.thresholds[klass]
        scored = _evaluate(source, evaluation, policy, world)
        proposal = review.proposal
        changes = review.report["proposal"]["changes"] if review.report["proposal"] else []
        round_ = Round(
            number=number,
            month=month,
            threshold=threshold,
            false_escalations=truth.false_escalations,
            missed_escalations=truth.missed_escalations,
            evaluation_false_plus_missed=scored,
            proposed=proposal.confidence.thresholds[klass] if proposal else threshold,
            changes=[c for c in changes if c["path"] != "version"],
        )
        loop.rounds.append(round_)
        if progress is not None:
            progress(loop, round_)
        if proposal is not None and review.proposal_yaml is not None:
            policy = parse_policy(review.proposal_yaml)
            text = review.proposal_yaml
    loop.final_threshold = policy.confidence.thresholds[klass]
    loop.final_evaluation = _evaluate(source, evaluation, policy, world)
    loop.optimum, _ = optimum_threshold(source, evaluation, policy, klass, world)
    return loop


def format_round(loop: Loop, r: Round) -> str:
    changed = ", ".join(f"{c['path']} {c['old']} -> {c['new']}" for c in r.changes) or "no change"
    return (
        f"  round {r.number} ({r.month}): {loop.klass} threshold {r.threshold:.2f}; false "
        f"{r.false_escalations}, missed {r.missed_escalations}, sum {r.false_plus_missed}; "
        f"on the evaluation month {r.evaluation_false_plus_missed}; proposal: {changed}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`make calibrate-demo`: the loop from 0.99 and from 0.60, printed round by round."""
    import argparse
    import json

    from stream.replay.config import CORPUS_PATH
    from stream.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=6000, help="per simulated month")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=float, nargs="+", default=[0.99, 0.60])
    parser.add_argument(
        "--seed", type=int, default=100, help="round n simulates its month with seed + n"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    source = Settings().datasets_dir / CORPUS_PATH
    results = []
    for start in args.starts:
        print(f"financial threshold starting at {start:.2f}:", flush=True)
        loop = closed_loop(
            source,
            start,
            rounds=args.rounds,
            conversations=args.conversations,
            seed=args.seed,
            progress=lambda lp, r: print(format_round(lp, r), flush=True),
        )
        print(
            f"  after {args.rounds} rounds: {loop.final_threshold:.2f}, the world's optimum "
            f"{loop.optimum:.3f} (off by {abs(loop.final_threshold - loop.optimum):.3f}); "
            f"evaluation month {loop.rounds[0].evaluation_false_plus_missed} -> "
            f"{loop.final_evaluation}",
            flush=True,
        )
        results.append(loop.to_record())
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": "make calibrate-demo"
            if args.seed == 100
            else f"python -m stream.calibration.loop --seed {args.seed} --out {args.out}",
            "seed": args.seed,
            "conversations_per_month": args.conversations,
            "loops": results,
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
