"""Repeated log lines are limited per time window: a broker outage must not write 100k lines.

While the cluster is unreachable, aiokafka and librdkafka report every failed reconnect and
metadata refresh, each several times a second per connection; a 23 s outage once wrote 133,341
lines (14 MB). The first few lines of each kind per window still go out, and the next one that
does says how many like it were held back, so nothing is hidden, only counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

PER_WINDOW: Final = 5
WINDOW_SECONDS: Final = 10.0
_MAX_KINDS: Final = 2048


class RepeatLimiter(logging.Filter):
    """Lets through `per_window` records of one kind (logger, level, message template) per
    window; counts the rest and reports the count on the next record of that kind let through."""

    def __init__(
        self,
        per_window: int = PER_WINDOW,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._per_window = per_window
        self._window = window
        self._clock = clock
        # kind -> [window start, let through in this window, held back since last report]
        self._kinds: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        state = self._kinds.get(kind)
        if state is None:
            if len(self._kinds) >= _MAX_KINDS:
                self._kinds.clear()
            state = self._kinds[kind] = [now, 0, 0]
        if now - state[0] >= self._window:
            state[0], state[1] = now, 0
        if state[1] >= self._per_window:
            state[2] += 1
            return False
        state[1] += 1
        if state[2]:
            held = int(state[2])
            state[2] = 0
            record.msg = f"{record.getMessage()} [{held} more like this held back]"
            record.args = ()  # not None: mode's formatter would make it (None,)
        return True


_LIMITER = RepeatLimiter()


def install(logger: logging.Logger | None = None) -> RepeatLimiter:
    """Adds the one limiter to every handler of the root logger (idempotent).

    Called at start and again once the framework has set up its own handlers.
    """
    root = logger or logging.getLogger()
    for handler in root.handlers:
        if _LIMITER not in handler.filters:
            handler.addFilter(_LIMITER)
    return _LIMITER
