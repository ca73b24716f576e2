"""The judge applied to a backtest run: every conversation's facts folded, then judged.

The decisions come through a `DecisionSink` during the run, closes and outcomes from the run's
`Inputs`, so the facts are the ones the live calibration agent folds from the topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.backtest.report import judge_against, note_ending
from stream.backtest.run import Inputs
from stream.core.decision import Decision
from stream.core.judge import JudgeFacts, Judgement, JudgeSettings, note_decision


@dataclass(slots=True)
class FactsSink:
    """A decision sink of `run_policies` that folds each decision into its conversation's facts."""

    facts: dict[str, JudgeFacts] = field(default_factory=dict)

    def __call__(self, decision: Decision) -> None:
        key = decision.conversation_id or f"customer:{decision.customer_id}"
        facts = self.facts.get(key)
        if facts is None:
            facts = self.facts[key] = JudgeFacts(key, decision.customer_id)
        note_decision(facts, decision)


def conversation_facts(sink: FactsSink, inputs: Inputs) -> dict[str, JudgeFacts]:
    """Decisions, closes and the outcome of every conversation that has any of them."""
    out: dict[str, JudgeFacts] = {}
    ids = set(sink.facts) | set(inputs.outcomes)
    for conversation_id in sorted(ids):
        decided = sink.facts.get(conversation_id)
        facts = JudgeFacts(conversation_id, "")
        if decided is not None:
            facts = JudgeFacts.from_record(decided.to_record())
        outcome = inputs.outcomes.get(conversation_id)
        if not facts.customer_id:
            seen = inputs.conversations.get(conversation_id)
            facts.customer_id = (
                seen.customer_id if seen else outcome.customer_id if outcome else "unknown"
            )
        note_ending(facts, inputs)
        out[conversation_id] = facts
    return out


def judge_all(
    facts: dict[str, JudgeFacts],
    settings: JudgeSettings,
    recorded: dict[str, Judgement] | None = None,
) -> dict[str, Judgement]:
    """Each conversation judged; against `recorded` (the policy that ran) when given, so a
    different decision is judged by the counterfactual rule of `stream.core.judge`."""
    return {
        conversation_id: judge_against(conv, settings, recorded)
        for conversation_id, conv in facts.items()
    }
