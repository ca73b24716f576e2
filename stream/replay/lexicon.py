"""A cheap, deterministic polarity of a customer turn: the base of the synthetic sentiment."""

from __future__ import annotations

import math
import re
from typing import Final

_WORD = re.compile(r"[a-z']+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_POSITIVE: Final[frozenset[str]] = _words(
    "thanks thank thx great love awesome appreciate appreciated amazing helpful excellent"
    " perfect wonderful happy glad best kind nice fantastic good resolved"
)
_NEGATIVE: Final[frozenset[str]] = _words(
    "terrible worst awful horrible ridiculous unacceptable disappointed disappointing angry"
    " frustrated frustrating annoyed upset rude useless pathetic disgusting never nobody"
    " cancelled canceled delayed lost stuck missed waiting hours again still broken fail"
    " failed joke shame poor bad sucks ruined nightmare lied refuse refused"
)
_HOSTILE: Final[frozenset[str]] = _words(
    "wtf damn hell crap shit fuck fucking idiots idiot stupid incompetent liars"
)


def lexicon_score(text: str) -> tuple[float, list[str]]:
    """A polarity of a turn (-1..1) and its labels, before any noise."""
    words = _WORD.findall(text.lower())
    pos = sum(1 for w in words if w in _POSITIVE)
    neg = sum(1 for w in words if w in _NEGATIVE)
    hostile = sum(1 for w in words if w in _HOSTILE)
    score = math.tanh(0.6 * (pos - neg - 1.5 * hostile))
    labels = []
    if neg >= 2 or score <= -0.6:
        labels.append("frustration")
    if hostile:
        labels.append("hostility")
    if text.count("?") >= 2:
        labels.append("confusion")
    return score, labels
