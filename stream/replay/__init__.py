"""Input events for a replay, built from real airline support conversations (docs/replay.md).

The customer and agent text and the order of the turns are real (the Twitter airline corpus under
the shared data directory, `Settings.datasets_dir`). Everything else is synthetic and derived from a
seed: customers, accounts, timestamps, contacts and issue keys, the agent's intents, confidences and
proposed actions, sentiment scores and outcomes. The same source, config and seed always give the
same events, in the same order, byte for byte.

The parts: `corpus` reads the conversations, `customers`, `agent_turns`, `outcomes` and `lexicon`
synthesise what the corpus lacks (pure functions of a seeded generator), `conversation` turns one
conversation into events, `schedule` places conversations and returning customers in time,
`output` writes event files, and `kafka` produces to the input topics.
"""

from stream.replay.config import CORPUS_PATH, DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, ReplayConfig
from stream.replay.conversation import SENTIMENT_MODEL
from stream.replay.corpus import CATEGORIES, CorpusConversation, classify, read_conversations
from stream.replay.lexicon import lexicon_score
from stream.replay.output import summarize, write_jsonl
from stream.replay.schedule import generate, iter_events

__all__ = [
    "CATEGORIES",
    "CORPUS_PATH",
    "DAY_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "SECOND_MS",
    "SENTIMENT_MODEL",
    "CorpusConversation",
    "ReplayConfig",
    "classify",
    "generate",
    "iter_events",
    "lexicon_score",
    "read_conversations",
    "summarize",
    "write_jsonl",
]
