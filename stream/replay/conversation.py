"""One real conversation as events: its contact, its timed turns, and sentiment for some of them."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field

from stream.core.events import ContactEvent, Event, MessageEvent, SentimentEvent
from stream.replay.agent_turns import agent_turn, conversation_intent, major_action
from stream.replay.config import MINUTE_MS, SECOND_MS, ReplayConfig
from stream.replay.corpus import CorpusConversation
from stream.replay.customers import Customer, Issue
from stream.replay.lexicon import lexicon_score

SENTIMENT_MODEL = "replay-lexicon-v1"


@dataclass(slots=True)
class Played:
    """What a conversation produced: its events in emission order, when it closed, and the
    lexicon scores of the customer's turns (the mood its outcome's CSAT follows)."""

    events: list[Event] = field(default_factory=list)
    closed: int = 0
    scores: list[float] = field(default_factory=list)


def contact_event(
    conversation_id: str,
    customer_id: str,
    at: int,
    action: str,
    issue: Issue,
    category: str,
    channel: str,
) -> ContactEvent:
    return ContactEvent(
        event_id=f"con-{conversation_id}-{action}",
        customer_id=customer_id,
        occurred_at=at,
        contact_id=f"ct-{conversation_id}",
        conversation_id=conversation_id,
        action=action,
        issue_key=issue.key,
        category=category,
        channel=channel,
    )


def play(
    conv: CorpusConversation,
    rng: random.Random,
    config: ReplayConfig,
    customer: Customer,
    issue: Issue,
    category: str,
    start: int,
) -> Played:
    """The events of `conv` for `customer` on `issue`, starting at `start` (event time)."""
    cid = conv.conversation_id
    who = customer.customer_id
    out = Played()
    out.events.append(contact_event(cid, who, start, "opened", issue, category, config.channel))
    ai_turns = [i for i, (role, _) in enumerate(conv.turns) if role == "ai_agent"]
    major = major_action(rng, category, customer)
    major_turn = rng.choice(ai_turns) if major and ai_turns else -1
    intent = conversation_intent(rng, category)
    at = start + rng.randint(200, 2_000)
    for index, (role, text) in enumerate(conv.turns):
        if index:
            median = 90.0 if role == "customer" else 25.0
            gap_s = min(max(rng.lognormvariate(math.log(median), 1.0), 2.0), 900.0)
            at += int(gap_s * SECOND_MS)
        n = index + 1
        message = MessageEvent(
            f"msg-{cid}-{n}", who, at, cid, f"{cid}-{n}", role, text, config.channel, category
        )
        if role == "ai_agent":
            turn = agent_turn(rng, intent, major if index == major_turn else None, customer, issue)
            out.events.append(
                dataclasses.replace(
                    message,
                    intent=turn.intent,
                    intent_confidence=turn.intent_confidence,
                    proposed_action=turn.proposed_action,
                    action_attempted=turn.action_attempted,
                    action_failed=turn.action_failed,
                )
            )
            continue
        out.events.append(message)
        lexical, labels = lexicon_score(text)
        out.scores.append(lexical)
        if rng.random() < config.sentiment_share:
            noisy = min(1.0, max(-1.0, lexical + rng.gauss(0.0, 0.15)))
            out.events.append(
                SentimentEvent(
                    event_id=f"sen-{cid}-{n}",
                    customer_id=who,
                    occurred_at=at + rng.randint(150, 1_500),
                    conversation_id=cid,
                    message_id=f"{cid}-{n}",
                    score=round(noisy, 3),
                    labels=tuple(labels),
                    model=SENTIMENT_MODEL,
                )
            )
    out.closed = at + rng.randint(30 * SECOND_MS, 10 * MINUTE_MS)
    out.events.append(
        contact_event(cid, who, out.closed, "closed", issue, category, config.channel)
    )
    return out
