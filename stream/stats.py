"""Rates with Wilson 95% intervals, means with normal intervals, and medians, for the reports.

The Wilson score interval is a closed form of a few lines (Wilson 1927; also what statsmodels'
`proportion_confint(method="wilson")` computes); a statistics package for it alone would weigh
more than the formula.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Final

Z95: Final[float] = 1.959963984540054


def wilson(successes: float, trials: float, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of `successes / trials`; None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(successes: float, trials: float) -> dict[str, Any]:
    """`{k, n, rate, low, high}`: the count, the sample size, the rate and its 95% interval."""
    interval = wilson(successes, trials)
    return {
        "k": successes,
        "n": trials,
        "rate": successes / trials if trials else None,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
    }


def mean(values: Sequence[float]) -> dict[str, Any]:
    """`{n, mean, low, high}`: a normal 95% interval of the mean (None below two values)."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    average = statistics.fmean(values)
    if n < 2:
        return {"n": n, "mean": average, "low": None, "high": None}
    half = Z95 * statistics.stdev(values) / math.sqrt(n)
    return {"n": n, "mean": average, "low": average - half, "high": average + half}


def quantiles(values: Sequence[float]) -> dict[str, Any]:
    """`{n, median, p90, mean, total}` of a sample (handle times)."""
    n = len(values)
    if n == 0:
        return {"n": 0, "median": None, "p90": None, "mean": None, "total": 0.0}
    ordered = sorted(values)
    p90 = ordered[min(n - 1, math.ceil(0.9 * n) - 1)]
    return {
        "n": n,
        "median": statistics.median(ordered),
        "p90": p90,
        "mean": statistics.fmean(ordered),
        "total": float(sum(ordered)),
    }


def needed_for(p: float, margin: float) -> int:
    """Cases needed for a Wilson interval around `p` to have a half-width of `margin`."""
    if margin <= 0:
        return 0
    p = min(max(p, 0.05), 0.95)
    return math.ceil(Z95 * Z95 * p * (1 - p) / (margin * margin))
