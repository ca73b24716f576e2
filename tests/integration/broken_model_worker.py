"""`python -m tests.integration.broken_model_worker`: a worker whose turn model raises on a turn.

The fault-injection entry point of tests/integration/test_fail_safe_live.py. The worker is the one
`python -m stream.worker` runs, given a turn model (the `model` argument of `step`, which the
worker takes through `stream.worker.run.main`) whose scoring raises on any customer turn that
contains `TRIGGER`: a failure inside the text analysis of the running worker, on the real broker.
"""

from __future__ import annotations

from stream.core.markers import TextSignal
from stream.core.turn_model import NO_CONTEXT, TurnContext, TurnModel, load_shipped
from stream.worker.run import main

TRIGGER = "[inject-text-analysis-failure]"


class BrokenTurnModel(TurnModel):
    """The shipped weights, whose score raises on a turn that asks for it."""

    def score(self, text: str, signal: TextSignal, context: TurnContext = NO_CONTEXT) -> float:
        if TRIGGER in text:
            raise RuntimeError("injected turn-model failure")
        return TurnModel.score(self, text, signal, context)


if __name__ == "__main__":
    shipped = load_shipped()
    main(model=BrokenTurnModel(shipped.version, shipped.bias, shipped.weights))
