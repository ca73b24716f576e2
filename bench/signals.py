"""Measure the text signal against labelled airline tweets and a plain VADER baseline."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import sys
import timeit
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from stream.core import markers  # noqa: E402
from stream.settings import Settings  # noqa: E402

DEFAULT_DATA = Settings().datasets_dir / "airline-sentiment" / "tweets_dev.csv"
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "signals.json"
# The standard VADER cut for "negative".
VADER_NEGATIVE_AT = -0.05
TIMING_TEXTS = 2000
TIMING_REPEATS = 5


def load(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def prf(predicted: Sequence[bool], gold: Sequence[bool]) -> dict[str, float | int]:
    tp = sum(p and g for p, g in zip(predicted, gold, strict=True))
    fp = sum(p and not g for p, g in zip(predicted, gold, strict=True))
    fn = sum(g and not p for p, g in zip(predicted, gold, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def tasks(rows: Sequence[dict[str, str]], predicted: Sequence[bool]) -> dict[str, Any]:
    negative = [r["airline_sentiment"] == "negative" for r in rows]
    service = [r["negativereason"] == "Customer Service Issue" for r in rows]
    return {
        "a_negative": prf(predicted, negative),
        "b_customer_service_issue": prf(predicted, service),
    }


def us_per_call(function: Callable[[str], object], texts: Sequence[str]) -> float:
    def batch() -> None:
        for text in texts:
            function(text)

    batch()  # warm caches and lazy imports before timing
    best = min(timeit.repeat(batch, number=1, repeat=TIMING_REPEATS))
    return round(best / len(texts) * 1e6, 2)


def evaluate(data: Path) -> dict[str, Any]:
    rows = load(data)
    texts = [r["text"] for r in rows]
    vader = SentimentIntensityAnalyzer()

    signals = [markers.analyze(t) for t in texts]
    ours = [s.negative for s in signals]
    strong = [s.score <= -0.6 for s in signals]
    baseline = [vader.polarity_scores(t)["compound"] <= VADER_NEGATIVE_AT for t in texts]

    # The rules were adjusted while reading errors on the even rows only; the odd rows were not
    # looked at, so the gap between the two halves shows how much of the result is fitted.
    halves: dict[str, Any] = {}
    for name, start in (("even_rows_tuning", 0), ("odd_rows_held_out", 1)):
        part = rows[start::2]
        halves[name] = {
            "n": len(part),
            "ours": tasks(part, ours[start::2]),
            "vader_baseline": tasks(part, baseline[start::2]),
        }

    timing = texts[:TIMING_TEXTS]
    words = sum(len(t.split()) for t in timing) / len(timing)
    return {
        "n": len(rows),
        "label_counts": {
            label: sum(r["airline_sentiment"] == label for r in rows)
            for label in ("negative", "neutral", "positive")
        },
        "customer_service_issue_count": sum(
            r["negativereason"] == "Customer Service Issue" for r in rows
        ),
        "ours": tasks(rows, ours),
        "vader_baseline": tasks(rows, baseline),
        "ours_score_at_or_below_-0.6": tasks(rows, strong),
        "halves": halves,
        "timing": {
            "texts": len(timing),
            "mean_words_per_text": round(words, 1),
            "repeats_best_of": TIMING_REPEATS,
            "ours_us_per_call": us_per_call(markers.analyze, timing),
            "vader_polarity_scores_us_per_call": us_per_call(vader.polarity_scores, timing),
        },
        "settings": {
            "negative_threshold": markers.NEGATIVE_THRESHOLD,
            "vader_negative_at": VADER_NEGATIVE_AT,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="tweets CSV")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON")
    args = parser.parse_args(argv)

    result = evaluate(args.data)
    executable = Path(sys.executable)
    if executable.is_relative_to(REPO_ROOT):
        shown = os.path.relpath(executable, Path.cwd())
    else:
        shown = "python"
    markers_source = Path(markers.__file__).read_bytes()
    result["run"] = {
        "command": shlex.join([shown, *sys.argv]) if argv is None else None,
        "cwd": os.path.relpath(Path.cwd(), REPO_ROOT),
        "data": str(args.data),
        "date_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "python": platform.python_version(),
        "vaderSentiment": metadata.version("vaderSentiment"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "markers_py_sha256": hashlib.sha256(markers_source).hexdigest(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    ours, base, timing = result["ours"], result["vader_baseline"], result["timing"]
    for task in ("a_negative", "b_customer_service_issue"):
        print(
            f"{task}: ours P={ours[task]['precision']} R={ours[task]['recall']} "
            f"F1={ours[task]['f1']} | vader P={base[task]['precision']} "
            f"R={base[task]['recall']} F1={base[task]['f1']}"
        )
    print(
        f"us/call: ours {timing['ours_us_per_call']} | "
        f"vader {timing['vader_polarity_scores_us_per_call']}"
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
