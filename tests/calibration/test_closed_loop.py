"""A short closed loop on the simulated world: from a too strict and a too lax financial
threshold, two monthly reviews bring it near the world's optimum, and each round's policy makes
fewer false plus missed escalations, on its own month and on a held-out month."""

from __future__ import annotations

from itertools import pairwise

import pytest

from stream.calibration import proposal as prop
from stream.calibration.loop import closed_loop
from stream.settings import Settings

SOURCE = Settings().datasets_dir / "twcs-airlines/airlines_raw.csv.bz2"


@pytest.mark.parametrize("start", [0.99, 0.60])
def test_two_rounds_move_the_threshold_to_the_optimum(start: float) -> None:
    loop = closed_loop(
        SOURCE,
        start,
        rounds=2,
        conversations=2500,
        settings=prop.Settings(review=("confidence",), min_cases=15),
    )
    thresholds = [r.threshold for r in loop.rounds] + [loop.final_threshold]
    # Each round moves towards the optimum, at most 0.10 at a time
    distances = [abs(t - loop.optimum) for t in thresholds]
    assert distances[0] > distances[1] > distances[2] or distances[2] <= 0.03
    assert all(abs(a - b) <= 0.10 + 1e-9 for a, b in pairwise(thresholds))
    assert abs(loop.final_threshold - loop.optimum) <= 0.03, (thresholds, loop.optimum)
    # The world's own count of false plus missed escalations falls from round to round ...
    own = [r.false_plus_missed for r in loop.rounds]
    assert own[0] > own[1], own
    # ... and the held-out month's falls with each adopted proposal
    scores = [r.evaluation_false_plus_missed for r in loop.rounds] + [loop.final_evaluation]
    assert scores[0] > scores[1] > scores[2], scores
