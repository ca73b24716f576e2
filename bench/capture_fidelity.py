"""How faithfully `escalation policy capture` turns recorded conversations into test cases.

For every conversation of a replayed history (real airline conversations, `stream.replay`), the
captured case is run through `step` and its decision (the furthest action and the rules named on
the decisive decision) is compared with what `step` decided on the recorded events themselves.
A mismatch means the case format could not carry something the history held. The same is done
with `--redact`. The baseline beside it is a capture that keeps only the turns (no account, no
earlier contacts, no scores), which is what a hand-written case often is.

    .venv/bin/python bench/capture_fidelity.py --conversations 1000
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from stream.backtest.run import run_policy
from stream.backtest.sources import JsonlSource
from stream.core.policy import default_policy
from stream.policytest.capture import capture
from stream.policytest.load import parse_cases
from stream.policytest.run import run_case
from stream.replay import CORPUS_PATH, ReplayConfig, iter_events, write_jsonl
from stream.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "capture_fidelity.json"


def _decided(result: Any) -> tuple[str, tuple[str, ...]]:
    decisive = result.decisive
    if decisive is None:
        return "continue", ()
    return decisive.decision.action, tuple(sorted({h.rule for h in decisive.decision.triggers}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    policy = default_policy()
    source = Settings().datasets_dir / CORPUS_PATH
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.jsonl"
        with events.open("w", encoding="utf-8") as out:
            write_jsonl(
                iter_events(source, ReplayConfig(seed=args.seed, conversations=args.conversations)),
                out,
            )
        recorded_run = run_policy(JsonlSource(events), policy)
        recorded: dict[str, tuple[str, tuple[str, ...]]] = {}
        for conversation in recorded_run.inputs.conversations:
            verdict = recorded_run.verdicts.get(conversation)
            decisive = verdict.decisive if verdict is not None else None
            recorded[conversation] = (
                (verdict.action, tuple(sorted({h.rule for h in decisive.triggers})))
                if verdict is not None and decisive is not None
                else ("continue", ())
            )
        counts: Counter[str] = Counter()
        by_action: Counter[str] = Counter()
        mismatches: list[dict[str, Any]] = []
        started = time.perf_counter()
        for conversation, truth in sorted(recorded.items()):
            by_action[truth[0]] += 1
            full = capture(events, conversation, policy)
            redacted = capture(events, conversation, policy, redacted=True)
            case = yaml.safe_load(full.yaml_text)["cases"][0]
            bare = {
                "name": case["name"],
                "category": case.get("category"),
                "turns": case["turns"],
                "expect": {"action": "continue"},
            }
            for turn in bare["turns"]:
                turn.pop("sentiment", None)
            loaded, problems = parse_cases(yaml.safe_dump({"cases": [bare]}), "bare")
            assert not problems, problems
            sides = {
                "full": _decided(full.result),
                "redacted": _decided(redacted.result),
                "turns_only": _decided(run_case(loaded[0], policy)),
            }
            for name, decided in sides.items():
                if decided == truth:
                    counts[name] += 1
                elif name != "turns_only" and len(mismatches) < 50:
                    mismatches.append(
                        {"conversation": conversation, "capture": name, "recorded": truth,
                         "case": decided}
                    )  # fmt: skip
        seconds = time.perf_counter() - started
    total = len(recorded)
    report = {
        "command": "python bench/capture_fidelity.py " + shlex.join(sys.argv[1:]),
        "policy": policy.version,
        "conversations": total,
        "recorded_actions": dict(by_action),
        "same_decision": {name: counts[name] for name in ("full", "redacted", "turns_only")},
        "same_decision_share": {
            name: round(counts[name] / total, 4) for name in ("full", "redacted", "turns_only")
        },
        "mismatches": mismatches,
        "seconds_for_all_captures": round(seconds, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "mismatches"}, indent=2))
    print(f"{len(mismatches)} mismatch(es) listed in {args.out}")


if __name__ == "__main__":
    main()
