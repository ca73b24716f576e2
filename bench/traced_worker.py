"""The worker with every event-loop callback timed: how long the loop was held, and by what.

`python bench/traced_worker.py` runs `python -m stream.worker` (from the working directory's
checkout) after wrapping asyncio's `Handle._run`. Every callback the main thread's loop runs is
timed in wall and CPU time (the thread's own); each one that held the loop for more than
`BENCH_LOOP_TRACE_MIN_MS` (1) is kept with when it started and what ran (a task's coroutine
chain). At exit, and every few seconds, they are written to `BENCH_LOOP_TRACE` as JSON. The bench
(`worker_bench.py --loop-trace`) reads them for the paced window: a decision waits for whatever
holds the loop when its record arrives, so the longest stretches without an await bound the tail.

Not part of the worker: timing each callback costs about a microsecond.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import runpy
import sys
import threading
import time
from typing import Any

PATH = os.environ["BENCH_LOOP_TRACE"]
MIN_S = float(os.environ.get("BENCH_LOOP_TRACE_MIN_MS", "1")) / 1000
MAIN = threading.main_thread().ident
stretches: list[tuple[float, float, float, str]] = []  # (wall start, wall s, cpu s, name)
totals = {"callbacks": 0, "wall_s": 0.0, "cpu_s": 0.0}
_dumped = [time.monotonic()]


def _name(callback: Any) -> str:
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro: Any = owner.get_coro()
        agent = getattr(getattr(coro, "cr_frame", None), "f_locals", {}).get("self")
        if type(agent).__name__ == "Agent":  # which of the worker's agents
            return f"agent:{agent.name}"
        chain: list[str] = []
        while coro is not None and len(chain) < 8:
            chain.append(getattr(coro, "__qualname__", type(coro).__name__))
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        return "task:" + ">".join(chain)
    return str(getattr(callback, "__qualname__", None) or repr(callback))[:160]


def dump() -> None:
    with open(PATH + ".tmp", "w") as fh:
        json.dump({"totals": totals, "stretches": stretches}, fh)
    os.replace(PATH + ".tmp", PATH)


_run = asyncio.events.Handle._run


def _timed(self: asyncio.Handle) -> None:
    if threading.get_ident() != MAIN:
        _run(self)
        return
    start, cpu = time.perf_counter(), time.thread_time()
    _run(self)
    wall = time.perf_counter() - start
    used = time.thread_time() - cpu
    totals["callbacks"] += 1
    totals["wall_s"] += wall
    totals["cpu_s"] += used
    if wall >= MIN_S:
        stretches.append((time.time() - wall, wall, used, _name(getattr(self, "_callback", None))))
        now = time.monotonic()
        if now - _dumped[0] > 5:
            _dumped[0] = now
            dump()


asyncio.events.Handle._run = _timed  # type: ignore[method-assign]
atexit.register(dump)
sys.path.insert(0, os.getcwd())
sys.argv = ["stream.worker", *sys.argv[1:]]
runpy.run_module("stream.worker", run_name="__main__", alter_sys=True)
