"""`/health/live` and `/health/ready` on the worker's web server, for probes and operators.

Live means the event loop answers and no agent is in a crash loop: Faust restarts a crashed agent
in place, which cures a passing error but not one that recurs on every restart (a table whose
changelog topic the worker saw as missing at start, say); such a worker answers 503 so that its
orchestrator restarts the process. Ready means
the worker does its job: input partitions assigned, tables recovered from their changelogs, and
the policy feed caught up with the policy topic. The body names the state either way, so a probe
failure in `kubectl describe` says what the worker is waiting for.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"

State = Literal["starting", "rebalancing", "recovering", "no_partitions", "policy_loading", "ready"]


@dataclass(frozen=True, slots=True)
class Readiness:
    state: State
    partitions: int
    recovered: bool
    policy_loaded: bool
    policy_version: str

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def body(self) -> dict[str, Any]:
        return {
            "status": self.state,
            "ready": self.ready,
            "assigned_partitions": self.partitions,
            "recovery_finished": self.recovered,
            "policy_loaded": self.policy_loaded,
            "policy_version": self.policy_version,
        }


def readiness(
    *,
    recovered_once: bool,
    rebalancing: bool,
    in_recovery: bool,
    partitions: int,
    policy_loaded: bool,
    policy_version: str,
) -> Readiness:
    """The first unmet condition names the state; pure, so every state is tested directly."""
    state: State
    if not recovered_once:
        state = "starting"
    elif in_recovery:
        state = "recovering"
    elif rebalancing:
        state = "rebalancing"
    elif partitions == 0:
        state = "no_partitions"
    elif not policy_loaded:
        state = "policy_loading"
    else:
        state = "ready"
    return Readiness(
        state, partitions, recovered_once and not in_recovery, policy_loaded, policy_version
    )


class CrashLoop:
    """Agent crashes in a sliding window; `looping` once `limit` fall within `window` seconds."""

    def __init__(self, limit: int = 3, window: float = 120.0) -> None:
        self.limit = limit
        self.window = window
        self._at: deque[float] = deque(maxlen=limit)
        self.last_reason: str | None = None

    def record(self, reason: str, now: float | None = None) -> None:
        self._at.append(time.monotonic() if now is None else now)
        self.last_reason = reason

    def looping(self, now: float | None = None) -> bool:
        current = time.monotonic() if now is None else now
        return len(self._at) == self.limit and current - self._at[0] <= self.window


def install(
    app: Any,
    *,
    input_topics: Iterable[str],
    policy_loaded: Callable[[], bool],
    policy_version: Callable[[], str],
) -> None:
    """Registers both pages on a built Faust app."""
    topics = frozenset(input_topics)
    recovered = {"once": False}

    async def mark_recovered(app: Any, **kwargs: Any) -> None:
        recovered["once"] = True

    app.on_rebalance_complete.connect(mark_recovered)

    crashes = CrashLoop()
    for agent in app.agents.values():
        # Faust's per-agent error callback (the `on_error` argument of `app.agent`), set here so
        # the agents' definitions stay free of health plumbing.
        agent._on_error = _counting(crashes, agent.name, agent._on_error)

    def current() -> Readiness:
        try:
            assigned = sum(1 for tp in app.consumer.assignment() if tp.topic in topics)
        except Exception:  # no consumer yet: still starting
            assigned = 0
        return readiness(
            recovered_once=recovered["once"],
            rebalancing=bool(app.rebalancing),
            in_recovery=bool(app.in_recovery),
            partitions=assigned,
            policy_loaded=policy_loaded(),
            policy_version=policy_version(),
        )

    async def live(web: Any, request: Any) -> Any:
        if crashes.looping():
            body = {"status": "crash_loop", "last_crash": crashes.last_reason}
            return web.json(body, status=503)
        return web.json({"status": "live"})

    async def ready(web: Any, request: Any) -> Any:
        result = current()
        return web.json(result.body(), status=200 if result.ready else 503)

    app.page(LIVE_PATH)(live)
    app.page(READY_PATH)(ready)


def _counting(
    crashes: CrashLoop, name: str, previous: Callable[[Any, BaseException], Any] | None
) -> Callable[[Any, BaseException], Any]:
    from stream.worker import metrics

    async def on_error(agent: Any, exc: BaseException) -> None:
        crashes.record(f"{name}: {type(exc).__name__}")
        metrics.AGENT_CRASHES.labels(agent=name).inc()
        if previous is not None:
            await previous(agent, exc)

    return on_error
