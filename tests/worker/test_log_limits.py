"""Repeated log lines are limited per window; the next line let through counts the rest."""

from __future__ import annotations

import logging

from stream.worker.log_limits import RepeatLimiter


def record(msg: str, *args: object, name: str = "aiokafka") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args or None, None)


def test_a_flood_of_one_kind_is_cut_to_a_few_lines_per_window() -> None:
    now = [0.0]
    limiter = RepeatLimiter(per_window=5, window=10.0, clock=lambda: now[0])

    # Given 10,000 reconnect errors in one second, with a different address each time
    passed = [limiter.filter(record("Unable connect to node %s", n)) for n in range(10_000)]

    # Then five went out, and another kind is not held back by them
    assert sum(passed) == 5
    assert limiter.filter(record("Unable to update metadata from %s", 1))

    # When the window has passed, the next one says how many were held back
    now[0] = 10.5
    late = record("Unable connect to node %s", 1)
    assert limiter.filter(late)
    assert late.getMessage() == "Unable connect to node 1 [9995 more like this held back]"
    # And it still formats under a formatter that wraps non-tuple args (mode's)
    assert late.args == ()


def test_distinct_messages_are_not_limited() -> None:
    limiter = RepeatLimiter(per_window=1, window=10.0, clock=lambda: 0.0)
    assert all(limiter.filter(record(f"topic {n} created")) for n in range(100))
