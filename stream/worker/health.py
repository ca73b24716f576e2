"""`/health/live` and `/health/ready` on the worker's web server, for probes and operators.

Live means the event loop answers: a wedged worker stops answering and is restarted. Ready means
the worker does its job: input partitions assigned, tables recovered from their changelogs, and
the policy feed caught up with the policy topic. The body names the state either way, so a probe
failure in `kubectl describe` says what the worker is waiting for.
"""

from __future__ import annotations

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
        return web.json({"status": "live"})

    async def ready(web: Any, request: Any) -> Any:
        result = current()
        return web.json(result.body(), status=200 if result.ready else 503)

    app.page(LIVE_PATH)(live)
    app.page(READY_PATH)(ready)
