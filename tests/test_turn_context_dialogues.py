"""On every uss-dev dialogue, `step` scores each customer turn as training featurized it.

Training computes a turn's context features from the texts before it (train/train_signal.py);
`step` takes the previous turn's markers and lexicon score from the state instead of analysing
that turn again. The shipped weights are only valid if the two give the same features, hence the
same score, for every turn the model was trained and measured on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import pytest

from stream.core.events import MessageEvent
from stream.core.markers import TextSignal, analyze_turn
from stream.core.policy import default_policy
from stream.core.state import CustomerState
from stream.core.step import SHIPPED_MODEL, step
from stream.core.turn_model import NO_CONTEXT, REPEAT_LOOKBACK, TurnContext, TurnModel
from stream.testing import T0
from train import signal_data, train_signal


@dataclass(eq=False)  # hashed by identity, as the turn model is
class Recorder:
    seen: list[tuple[set[str], float, bool]] = field(default_factory=list)

    def score(self, text: str, signal: TextSignal, context: TurnContext = NO_CONTEXT) -> float:
        score = SHIPPED_MODEL.score(text, signal, context)
        self.seen.append(
            (SHIPPED_MODEL.features(text, signal, context), score, context.previous_signal is None)
        )
        return score


@pytest.mark.parametrize("name", signal_data.USS_SETS)
def test_step_gives_every_rated_turn_the_features_training_gave_it(name: str) -> None:
    policy = default_policy()
    rated = 0
    carried = 0
    for number, dialogue in enumerate(signal_data.load_dialogues(name)):
        model = Recorder()
        state: CustomerState | None = None
        for index, (role, text) in enumerate(dialogue.turns):
            event = MessageEvent(
                f"e{index}", f"c{number}", T0 + index, "conv", f"m{index}", role, text
            )
            state = step(state, event, policy, model=cast(TurnModel, model)).state
        # One score per customer turn, in order; the rated ones are training's turns.
        labels = [
            label
            for (role, _), label in zip(dialogue.turns, dialogue.turn_labels, strict=True)
            if role == "customer"
        ]
        assert len(model.seen) == len(labels)
        seen = [s for s, label in zip(model.seen, labels, strict=True) if label is not None]
        turns = signal_data.dialogue_turns(dialogue)
        assert len(seen) == len(turns)
        for (features, score, from_texts), turn in zip(seen, turns, strict=True):
            signal = analyze_turn(turn.text, turn.previous_customer[-REPEAT_LOOKBACK:])
            assert features == train_signal.features_of(turn), (dialogue.key, turn.text)
            context = signal_data.context_of(turn)
            assert score == SHIPPED_MODEL.score(turn.text, signal, context), dialogue.key
            rated += 1
            carried += not from_texts
    # The kept signal is what scored: every turn with a customer turn before it.
    assert rated > 1000 and carried > rated // 2
