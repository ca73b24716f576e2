"""Backtest throughput on one core: events/s from a JSON Lines file of the replayed airline corpus.

The file is the whole corpus replayed (`stream.replay`, default config: 30 days of traffic),
generated once into a temporary directory and reused. Stages, each best of `--repeat` runs, pinned
to one CPU:
  1. parse: read the file into typed events (JSON decode + event validation), nothing else;
  2. step: the shipped policy over the events already in memory (the decision core alone);
  3. one policy: file -> run_policy(shipped policy), decisions counted, not kept;
  4. backtest: what `escalation backtest --events FILE` does: candidate and baseline in one pass,
     both decisions.jsonl files, report.json and report.html.
Then one cProfile run of stage 4 names the top costs. Writes bench/results/backtest.json.
Not a test: nothing here asserts the target.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stream.backtest.cli import run_backtest
from stream.backtest.run import run_policy
from stream.backtest.sources import JsonlSource
from stream.core.events import Event
from stream.core.policy import default_policy, parse_policy
from stream.replay import CORPUS_PATH, ReplayConfig, iter_events, write_jsonl
from stream.settings import REPO_ROOT, Settings

SOURCE = Settings().datasets_dir / CORPUS_PATH
# Beside this script, in the checkout it is run from: REPO_ROOT is the checkout Python imports
# `stream` from (an editable install may point at another).
RESULTS = Path(__file__).resolve().parent / "results" / "backtest.json"
TARGET = 50_000
# A plausible policy change: a higher refund limit and a stricter sentiment signal.
CANDIDATE_YAML = """
version: "bench-candidate"
boundaries: {refund: {limit: 250}}
sentiment: {min_turns: 3}
"""


def ensure_events(path: Path, seed: int) -> dict[str, Any]:
    """The replayed corpus as JSON Lines at `path`, generated when missing."""
    started = time.perf_counter()
    generated = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", encoding="utf-8") as fh:
            write_jsonl(iter_events(SOURCE, ReplayConfig(seed=seed)), fh)
        partial.replace(path)
        generated = True
    by_type: Counter[str] = Counter()
    first = last = None
    for event in JsonlSource(path):
        by_type[event.type] += 1
        first = event.occurred_at if first is None else min(first, event.occurred_at)
        last = event.occurred_at if last is None else max(last, event.occurred_at)
    return {
        "file": str(path),
        "bytes": path.stat().st_size,
        "events": sum(by_type.values()),
        "by_type": dict(sorted(by_type.items())),
        "event_time_days": round(((last or 0) - (first or 0)) / 86_400_000, 2),
        "replay_config": f"ReplayConfig(seed={seed}) over {SOURCE.name}",
        "generated_now": generated,
        "prepare_seconds": round(time.perf_counter() - started, 2),
    }


def best_of(repeat: int, run: Callable[[], int]) -> dict[str, Any]:
    """Runs `run` (which returns the events it processed) and keeps every rate and the best."""
    rates = []
    events = 0
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        events = run()
        rates.append(events / (time.perf_counter() - started))
    return {
        "events": events,
        "events_per_second": round(max(rates)),
        "runs": [round(r) for r in rates],
        "us_per_event": round(1e6 / max(rates), 2),
    }


# Where the time of one backtest goes: cumulative time of the entry point of each part.
# (file suffix, function) -> label; nested parts are shown indented under their parent.
_PARTS: tuple[tuple[str, str, str], ...] = (
    ("backtest/cli.py", "run_backtest", "whole backtest"),
    ("backtest/sources.py", "parse_line", "  read: JSON Lines line -> typed event"),
    ("json/decoder.py", "decode", "    JSON decode (stdlib)"),
    ("core/events.py", "event_from_dict", "    event validation (event_from_dict)"),
    ("core/step.py", "step", "  step (both policies)"),
    ("core/markers.py", "analyze_turn", "    text markers of customer turns"),
    ("core/handoff.py", "build", "    handoff packages"),
    ("backtest/cli.py", "__call__", "  write decisions.jsonl (to_record + JSON encode)"),
    ("backtest/run.py", "add", "  policy-independent facts (conversations, outcomes)"),
    ("backtest/run.py", "_tally", "  verdicts per conversation"),
    ("backtest/report.py", "build_report", "  report.json"),
    ("backtest/html.py", "render", "  report.html"),
)


def profile(events_file: Path, out: Path) -> dict[str, Any]:
    candidate, baseline = parse_policy(CANDIDATE_YAML), default_policy()
    profiler = cProfile.Profile()
    profiler.enable()
    run_backtest(JsonlSource(events_file), candidate, baseline, out)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    cumulative: dict[str, float] = {}
    rows = []
    for (filename, line, function), (_, calls, tottime, cumtime, _) in raw.items():
        for suffix, name, label in _PARTS:
            if filename.endswith(suffix) and function == name:
                cumulative[label] = cumulative.get(label, 0.0) + cumtime
        short = filename.replace(str(REPO_ROOT) + "/", "")
        rows.append((tottime, cumtime, calls, f"{short}:{line}({function})"))
    rows.sort(reverse=True)
    whole = cumulative.get("whole backtest", 0.0) or 1.0
    return {
        "profiled_seconds": round(whole, 2),
        "parts": {
            label: {
                "seconds": round(cumulative.get(label, 0.0), 2),
                "share": round(cumulative.get(label, 0.0) / whole, 3),
            }
            for _, _, label in _PARTS
        },
        "top_by_own_time": [
            {"function": name, "own_s": round(own, 2), "cumulative_s": round(cum, 2), "calls": n}
            for own, cum, n, name in rows[:15]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=None, help="an existing JSON Lines file")
    parser.add_argument("--seed", type=int, default=ReplayConfig().seed)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0, help="the one CPU to pin to")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    scratch = Path(tempfile.gettempdir()) / "escalation-bench"
    events_file = args.events or scratch / f"airlines-seed{args.seed}.jsonl"
    corpus = ensure_events(events_file, args.seed)
    print(f"{corpus['events']:,} events, {corpus['bytes'] / 1e6:.0f} MB: {events_file}")

    candidate, baseline = parse_policy(CANDIDATE_YAML), default_policy()
    in_memory: list[Event] = list(JsonlSource(events_file))

    def parse() -> int:
        return sum(1 for _ in JsonlSource(events_file))

    def step_only() -> int:
        return run_policy(in_memory, baseline, keep=False).events

    def one_policy() -> int:
        return run_policy(JsonlSource(events_file), baseline, keep=False).events

    def backtest() -> int:
        results, _ = run_backtest(
            JsonlSource(events_file), candidate, baseline, scratch / "backtest-out"
        )
        return results["candidate"].events

    stages: dict[str, Any] = {}
    for name, run in (
        ("parse", parse),
        ("step_in_memory", step_only),
        ("one_policy_from_file", one_policy),
        ("backtest_two_policies_from_file", backtest),
    ):
        stages[name] = best_of(args.repeat, run)
        print(f"{name:34s} {stages[name]['events_per_second']:>9,} events/s")

    headline = stages["backtest_two_policies_from_file"]["events_per_second"]
    result: dict[str, Any] = {
        "benchmark": "backtest events/s from a JSON Lines file, one core",
        "command": "python bench/backtest_bench.py"
        + (f" --events {args.events}" if args.events else ""),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "pinned_to_cpu": args.cpu,
        "corpus": corpus,
        "policies": {"candidate": candidate.version, "baseline": baseline.version},
        "stages": stages,
        "target_events_per_second": TARGET,
        "backtest_events_per_second": headline,
        "meets_target": headline >= TARGET,
    }
    if not args.no_profile:
        result["profile"] = profile(events_file, scratch / "backtest-profile-out")
        for label, part in result["profile"]["parts"].items():
            print(f"  {part['share']:6.1%}  {part['seconds']:6.2f} s  {label}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.results}")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
