"""Negative markers, a sentiment score and a verdict for one customer turn (sentiment trigger)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from stream.core.vocabulary import (
    CLARIFICATION,
    FRUSTRATION,
    HOSTILE_SHORT,
    HUMAN_REQUEST,
    MARKER_KINDS,
    NEGATIVE_LEXICON,
    REPEAT_QUESTION,
)

__all__ = [
    "CLARIFICATION",
    "FRUSTRATION",
    "HOSTILE_SHORT",
    "HUMAN_REQUEST",
    "MARKER_KINDS",
    "NEGATIVE_LEXICON",
    "NEGATIVE_THRESHOLD",
    "REPEAT_QUESTION",
    "Marker",
    "TextSignal",
    "analyze",
    "analyze_turn",
    "asks_yes_no",
    "is_short_no",
]

# Internal rule kind for problem reports; never emitted as a marker.
PROBLEM = "problem"


@dataclass(frozen=True, slots=True)
class Marker:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class TextSignal:
    markers: tuple[Marker, ...]
    score: float
    negative: bool
    human_request: bool


# --- scoring constants -------------------------------------------------------------------------
#
# raw = lexicon valence sum (VADER scale, roughly -4..4 per word) - sum of marker weights
# score = raw / sqrt(raw^2 + ALPHA), the same squashing VADER uses for its compound score, so a
# score here reads like a VADER compound: one explicit frustration phrase alone gives about -0.46,
# two markers or one marker plus clearly negative wording go below -0.6.
ALPHA = 15.0
MARKER_WEIGHTS: dict[str, float] = {
    FRUSTRATION: 2.0,
    CLARIFICATION: 1.5,
    HOSTILE_SHORT: 1.5,
    # An explicit ask for a person is its own immediate trigger; counting it again here would
    # make every polite routing request ("could you call me back?") look like frustration.
    HUMAN_REQUEST: 0.0,
    REPEAT_QUESTION: 1.5,
    # Already counted through the lexicon sum; the marker only makes it visible as evidence.
    NEGATIVE_LEXICON: 0.0,
}
# Kinds that make a turn negative on their own, whatever the lexicon says.
_VERDICT_KINDS = frozenset({FRUSTRATION, CLARIFICATION, HOSTILE_SHORT, REPEAT_QUESTION})
# A turn without such a marker is negative when its score is at or below this value. VADER's own
# cut is -0.05; support messages that only describe a problem ("my order is late again") carry
# mild negative words, so any net negative valence counts.
NEGATIVE_THRESHOLD = -0.05
# Valence a problem report ("doesn't work", "where is my") adds, like one mildly negative word.
PROBLEM_VALENCE = -1.2
# Lexicon sum at or below which a negative_lexicon marker is emitted (one clearly negative word
# such as "bad", "wrong" or "angry", or several milder ones).
NEGATIVE_LEXICON_MARKER_AT = -2.0
# Evidence kept per turn; a pasted log can match a phrase thousands of times, and the score has
# saturated long before this many markers.
MAX_MARKERS = 32
SHORT_TURN_MAX_WORDS = 4
REPEAT_MIN_WORDS = 4
REPEAT_JACCARD = 0.6

# VADER's negation scalar and the usual "but" weighting (the clause after "but" carries the
# sentiment).
_NEGATION_SCALE = -0.74
_BEFORE_BUT = 0.5
_AFTER_BUT = 1.5


# --- lexicon -----------------------------------------------------------------------------------

# Support-conversation corrections to VADER's general-purpose valences. Politeness and requests
# ("please help") and conversational acknowledgements ("yes", "ok") are neutral in a support
# dialog; VADER scores them as praise. A few service-failure words are missing or too mild.
_SUPPORT_OVERRIDES: dict[str, float] = {
    "help": 0.0,
    "please": 0.0,
    "pls": 0.0,
    "plz": 0.0,
    "yes": 0.0,
    "ok": 0.0,
    "okay": 0.0,
    "sure": 0.0,
    "wow": 0.0,
    "joke": -1.0,
    "delayed": -1.3,
    "delays": -1.3,
    "canceled": -1.0,
    "cancelled": -1.0,
    "late": -0.8,
    "stranded": -1.5,
    "overcharged": -1.8,
    "unresolved": -1.2,
    "unanswered": -1.2,
    "unable": -1.0,
    "issue": -0.8,
    "issues": -0.8,
    "glitch": -1.2,
    "bug": -1.0,
    "buggy": -1.5,
    "crashed": -1.5,
    "crashes": -1.5,
    "crashing": -1.5,
    "incorrect": -1.5,
    "invalid": -1.0,
    "declined": -1.0,
}


def _load_lexicon() -> dict[str, float]:
    raw = (
        resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    )
    lexicon: dict[str, float] = {}
    for line in raw.splitlines():
        parts = line.split("\t", 2)
        if len(parts) < 2:
            continue
        try:
            lexicon[parts[0]] = float(parts[1])
        except ValueError:
            continue
    lexicon.update(_SUPPORT_OVERRIDES)
    return lexicon


_LEXICON: dict[str, float] = _load_lexicon()


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NEGATIONS = _words(
    """
    not no never none nobody nothing nowhere neither nor cannot without nope
    aint arent cant couldnt didnt doesnt dont hadnt hasnt havent isnt shouldnt wasnt werent
    wont wouldnt
    """
)
# Gratitude is not flipped by a negation before it: "no thanks" is a polite decline.
_UNNEGATED = frozenset({"thanks", "thank", "thx", "ty"})
_PUNCT = "\"'`.,;:!?()[]{}<>*#~_-/\\|…“”‘’"
_STOPWORDS = _words(
    """
    a an the and or but if so to of in on at for from by with about as into is are was were be
    been being am do does did doing have has had having i me my mine you your yours we our us it
    its this that these those there here he she they them their his her what which who whom when
    where why how can could would should will shall may might must just also too very really
    then than now not no yes ok okay please thanks thank hi hello hey
    """
)


# --- phrase markers ----------------------------------------------------------------------------
#
# Single words that are explicit frustration on their own. Looked up per token, so they cost one
# dict access; inflections are listed instead of matched by stem for the same reason.
_FRUSTRATION_WORDS = _words(
    """
    ridiculous unacceptable outrageous pathetic disgrace disgraceful disgusting appalling absurd
    infuriating infuriated incompetent incompetence useless worthless hopeless pointless laughable
    unbelievable horrendous atrocious worst unhelpful
    frustrated frustrating frustration frustrates annoyed annoying furious livid pissed angry upset
    disappointed disappointing disappointment sucks suck sucked
    """
)
# Profanity and insults intensify rather than state a feeling ("damn good service"), so they
# count only in a turn that is not positive.
_PROFANITY = _words(
    """
    fuck fucking fucked fuckin fucks bullshit shit shitty crap crappy damn damned goddamn
    ass asses asshole assholes idiot idiots idiotic moron morons stupid dumb
    wtf wth ffs omfg stfu fml smh bs
    """
)

# Multi-word phrase rules: (kind, anchor words separated by spaces, pattern). A rule's pattern
# only runs when one of its anchors occurs as a word in the turn; scanning one alternation of
# every phrase over every message costs several times the whole per-message budget.
_RULES: tuple[tuple[str, str, str], ...] = (
    # --- explicit frustration
    (
        FRUSTRATION,
        "fed sick tired enough",
        r"\b(?:fed up|sick (?:and tired )?of|tired of|had enough|enough is enough)\b",
    ),
    (
        FRUSTRATION,
        "service support experience",
        r"\b(?:terrible|horrible|awful|poor|bad|lousy|crappy|shitty|abysmal|atrocious|zero|no)"
        r" (?:customer )?(?:service|support|experience)\b",
    ),
    (
        FRUSTRATION,
        "waste wasted",
        r"\b(?:waste of (?:my |our )?(?:time|money)|wasted (?:my |our )?(?:time|day|money|whole))",
    ),
    (
        FRUSTRATION,
        "still",
        r"\bstill (?:waiting|not|no|nothing|haven'?t|hasn'?t|can'?t|cannot|don'?t|doesn'?t"
        r"|didn'?t|isn'?t|won'?t|unable|broken|stuck)\b",
    ),
    (
        FRUSTRATION,
        "one noone nobody",
        r"\b(?:no ?one|nobody)(?: is| has| will| seems to)? (?:help\w*|answer\w*|respond\w*|repl\w*"
        r"|cares|picks up|called|calls|gets back)",
    ),
    (FRUSTRATION, "joke", r"\b(?:is|a|what a|such a|total|complete|absolute) joke\b"),
    # Time spent waiting, in either order: "2 hours on hold", "waiting for over an hour".
    (
        FRUSTRATION,
        "hold holding waiting waited wait counting",
        r"\b(?:\d+|an?|one|two|three|four|five|several|many)[ -]?(?:hours?|hrs?|minutes|mins|days"
        r"|weeks)(?: now)? (?:on hold|waiting|wait|of waiting|holding|in line|and counting)\b"
        r"|\b(?:on hold|waiting|waited|holding) (?:for )?(?:over |almost |nearly |more than "
        r"|about )?(?:\d+|an?|one|two|three|four|five|several|many)[ -]?(?:hours?|hrs?|minutes"
        r"|mins|days|weeks)\b"
        r"|\b(?:on hold|waiting|waited|holding) (?:for )?(?:an? |so )?(?:extremely |very |so "
        r"|really |such a )?(?:long|forever|ages)\b",
    ),
    (FRUSTRATION, "again", r"\bagain ?!{2,}"),
    # The same failure once more: "delayed again", "it broke again".
    (
        FRUSTRATION,
        "again",
        r"\b(?:delayed|cancell?ed|broken|broke|down|late|lost|wrong|happened|failed|charged|stuck"
        r"|crashed|declined|not working) again\b",
    ),
    (FRUSTRATION, "screw", r"\bscrew (?:you|this|that)\b"),
    (
        FRUSTRATION,
        "kidding serious joking seriously believe",
        r"\b(?:are you (?:kidding|serious|joking)|kidding me|seriously\?|can'?t believe"
        r"|cannot believe)",
    ),
    (
        FRUSTRATION,
        "never",
        r"\bnever (?:again|(?:flying|fly|using|use|buying|buy|ordering|order|booking|book)"
        r" (?:with )?(?:you|again|this))\b",
    ),
    (FRUSTRATION, "nothing", r"\bthank(?:s| you) for nothing\b"),
    (
        FRUSTRATION,
        "not",
        r"\bnot (?:happy|impressed|acceptable|good enough|helpful|ok(?:ay)?)\b"
        r"|(?:\.\.\.?|,) ?not!",
    ),
    # Annoyance with the automated agent itself.
    (
        FRUSTRATION,
        "response responses reply replies answer answers message messages bot robot",
        r"\b(?:robotic|automated|canned|scripted|generic|copy[- ]?pasted?) (?:response|reply"
        r"|answer|message)s?\b|\b(?:stupid|useless|dumb) (?:ro)?bot\b|\bare you a (?:ro)?bot\b"
        r"|\btalking to a (?:ro)?bot\b",
    ),
    (FRUSTRATION, "hard difficult", r"\b(?:how|why) (?:hard|difficult) (?:is|can) it\b"),
    (
        FRUSTRATION,
        "times",
        r"\b(?:\d+|two|three|four|five|six|several|multiple|so many|countless) times\b",
    ),
    (
        FRUSTRATION,
        "time",
        r"\bthe (?:second|2nd|third|3rd|fourth|4th|fifth|5th|nth) time\b|\bevery single time\b",
    ),
    (
        FRUSTRATION,
        "no",
        r"\bno (?:response|reply|replies|answer|call ?back|help|updates?|communication)\b",
    ),
    (FRUSTRATION, "hung through", r"\bhung up on\b|\b(?:can'?t|cannot) get through\b"),
    # --- clarification requests
    (
        CLARIFICATION,
        "already just",
        r"\bi(?:'ve| have)? already (?:told|said|explained|mentioned|gave|given|sent|provided"
        r"|answered|did|tried)\b|\bi(?:'ve| have)? just (?:told you|said|explained)\b",
    ),
    (
        CLARIFICATION,
        "told said mentioned explained stated wrote",
        r"\bi(?:'ve| have)? told you\b|\b(?:as|like) i (?:said|mentioned|explained|stated|wrote"
        r"|told you)\b",
    ),
    (CLARIFICATION, "mean", r"\bwhat do you mean\b|\bwhat does that (?:even )?mean\b"),
    (
        CLARIFICATION,
        "what question",
        r"\bnot what i (?:asked|said|meant|need|want)\w*|\bnot my question\b",
    ),
    (
        CLARIFICATION,
        "listening reading read listen",
        r"\b(?:you'?re|you are|you aren'?t) (?:not )?(?:listening|reading)\b"
        r"|\b(?:did|do) you (?:even )?(?:read|listen)\b|\bread my (?:message|messages|tweet"
        r"|question|email|post|dm|previous)\b",
    ),
    (
        CLARIFICATION,
        "understand get sense",
        r"\bi (?:still )?(?:don'?t|do not) (?:understand|get it)\b|\bmakes no sense\b"
        r"|\b(?:doesn'?t|does not) make (?:any )?sense\b",
    ),
    (CLARIFICATION, "again", r"\bagain ?\?"),
    (CLARIFICATION, "many", r"\bhow many (?:more )?times\b"),
    (
        CLARIFICATION,
        "answer",
        r"\b(?:didn'?t|did not|doesn'?t|does not|don'?t|do not) answer (?:my|the) question\b",
    ),
    (
        CLARIFICATION,
        "myself explain asked",
        r"\b(?:repeat|repeating) myself\b|\bexplain (?:it |this |that )?again\b"
        r"|\byou (?:already )?asked (?:me )?(?:that|this)\b",
    ),
    # --- explicit request for a person
    (
        HUMAN_REQUEST,
        (
            "person people human humans agent representative rep manager supervisor someone "
            "somebody anyone being service"
        ),
        r"\b(?:talk|speak|chat) (?:to|with) (?:a |an |your )?(?:real |live |actual |human )?"
        r"(?:person|people|human|humans|agent|representative|rep|manager|supervisor|someone"
        r"|somebody|anyone|a human being|customer service)\b",
    ),
    (
        HUMAN_REQUEST,
        "person human agent representative rep manager supervisor",
        r"\b(?:get|give|put|connect|transfer) (?:me )?(?:to |with |through to )?"
        r"(?:a |an )?(?:real |live |actual )?(?:person|human|agent|representative|rep|manager"
        r"|supervisor)\b"
        r"|\b(?:real person|real human|live agent|live person|human|agent|representative|rep"
        r"|manager|supervisor|operator) (?:please|pls|plz|now)\b"
        r"|\b(?:want|need|demand) (?:a |an )?(?:real |live )?(?:person|human|representative"
        r"|manager|supervisor)\b"
        r"|\bcan i (?:get|have) (?:a |an )?(?:real |live )?(?:person|human|agent|representative"
        r"|manager|supervisor)\b",
    ),
    (HUMAN_REQUEST, "transfer connect escalate", r"\b(?:transfer|connect|escalate) me\b"),
    (
        HUMAN_REQUEST,
        "human person someone anyone",
        r"\bis there (?:a |an )?(?:real |actual )?(?:human|person|someone|anyone) "
        r"(?:there|i can|to talk)",
    ),
    # "call me" only as a request, not "call me crazy" or "don't call me".
    (
        HUMAN_REQUEST,
        "call",
        r"(?<!n't )(?<!not )\bcall me(?! crazy| old| an? | names| when| if)(?: back)?\b",
    ),
    # --- problem reports: no marker, they add negative valence like lexicon words do
    (
        PROBLEM,
        (
            "work works working worked load loading let respond responded arrive arrived show "
            "through accept accepted receive received"
        ),
        r"\b(?:doesn'?t|does not|isn'?t|is not|not|won'?t|will not|didn'?t|did not|wasn'?t"
        r"|was not|never|still not) (?:work\w*|load\w*|let me|respond\w*|arrive\w*"
        r"|show(?:ing)? up|go(?:ne)? through|accept\w*|receive\w*)\b",
    ),
    (
        PROBLEM,
        "can't cant cannot couldn't couldnt unable",
        r"\b(?:can'?t|cannot|couldn'?t|unable to) (?:find|get|log ?in|login|sign in|access|book"
        r"|check in|reach|change|cancel|use|see|make|talk|speak|figure)\b",
    ),
    (
        PROBLEM,
        "keep keeps",
        r"\bkeeps? (?:telling|saying|failing|crashing|asking|giving|sending|getting|freezing"
        r"|logging|charging|dropping|cancel\w*)",
    ),
    (
        PROBLEM,
        "why",
        r"\bwhy (?:can'?t|cannot|won'?t|didn'?t|don'?t|doesn'?t|isn'?t|aren'?t|wasn'?t|weren'?t"
        r"|hasn'?t|haven'?t|is it so|is this so|do i have to|did i have to|would you|does it take)",
    ),
    (PROBLEM, "where where's", r"\bwhere(?: is|'s| are) (?:my|our)\b"),
    (
        PROBLEM,
        "charged billed double",
        r"\b(?:charged|billed) (?:me )?(?:twice|double|again|wrong\w*)|\bdouble[- ]charged\b",
    ),
)

_COMPILED_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern)) for kind, _, pattern in _RULES
)


def _index_anchors() -> dict[str, tuple[int, ...]]:
    index: dict[str, list[int]] = {}
    for number, (_, anchors, _) in enumerate(_RULES):
        for anchor in anchors.split():
            index.setdefault(anchor, []).append(number)
    return {anchor: tuple(numbers) for anchor, numbers in index.items()}


_ANCHORS: dict[str, tuple[int, ...]] = _index_anchors()

# Emphasis: "!!!", "?!", "???" and long all-caps words. Emphasis amplifies whatever the turn
# says, so it only counts as frustration in a turn that is not positive ("THANK YOU!!!" is not).
_EMPHASIS = re.compile(r"!{3,}|\?{3,}|(?:\?!|!\?)[?!]*")
_CAPS_ANY = re.compile(r"[A-Z]{4,}")
# Whole words only, not inside handles, hashtags or URLs; acronyms are mostly shorter.
_CAPS_WORD = re.compile(r"(?<![\w@#/.])[A-Z]{4,}(?![\w/.])")
# Masked profanity ("f***", "s#@t").
_MASKED = re.compile(r"\b[a-z][*#@$%]{2,}[a-z]*")
# Short one-word bewilderment: "what?", "huh??", "sorry, what?".
_BEWILDERED = re.compile(r"^(?:huh|what|sorry,? what|excuse me|come again)\s*\?+$")

# A human request preceded by a refusal ("I don't want to talk to a person") is not one.
_REFUSAL_BEFORE = re.compile(r"(?:\bdon'?t|\bdo not|\bnever|\bno need to|\bnot)(?: \w+){0,3} $")

# --- reported speech ---------------------------------------------------------------------------
#
# A request for a person is a speech act: it counts only when the customer makes it. Words inside
# quotation marks, or after a third party's reporting verb ("my colleague said ...", "he told me
# ..."), are someone else's: such a match is still listed as a human_request marker (the turn
# signal's features are the marker kinds it was trained on), but it does not make the turn a
# request. Frustration words keep counting there: a customer relaying someone's anger still tells
# us about the conversation.
#
# Quotation marks: straight and typographic double quotes, guillemets, low-high German quotes,
# and single quotes that open before a word and close after one (so "don't" is no quote). The
# lowered text has "’" already turned into "'", so a typographic single quote closes with "'".
# Only a closed quotation counts: a stray mark (an inch sign) must not swallow a real request.
_QUOTED = re.compile(
    r'"[^"]*"'
    r"|“[^”\"]*[”\"]"
    r"|„[^“”\"]*[“”\"]"
    r"|«[^»]*»"
    r"|‘[^'‘]*'"
    r"|(?<!\w)'(?=\w)[^'\n]*?(?<=[\w.!?,])'(?!\w)"
)
# A third party, then a verb that reports what they said or asked. "I said" and "you said" are not
# here: the customer repeating their own ask is still asking.
_REPORTED = re.compile(
    r"\b(?:he|she|they|someone|somebody|everyone|everybody|people"
    r"|(?:my|our|his|her|their|the|a) (?:\w+ )?\w+)"
    r"(?: (?:just|also|even|always|keeps?|kept|was|is|were|are|had|has|have))?"
    r" (?:said|says|saying|told|tells|telling|asked|asks|asking|wrote|writes|yelled|shouted"
    r"|screamed|insisted|suggested|thinks|thought)\b"
    r"(?: (?:me|us|him|her|them))?(?: that| to)?"
)
# Where reported speech without quotation marks ends: the end of the sentence, or a contrast or a
# first-person restart ("..., but I want a person", "and I want a person").
_REPORTED_END = re.compile(
    r"[.!?;:\n]|,? (?:but|however|though|although|anyway|yet)\b|,? (?:and|so) (?:i|we)\b"
)


def _reported_spans(lower: str) -> list[tuple[int, int]]:
    """Character spans of `lower` that report someone else's words.

    A quotation that is the whole turn is the customer's own message in quotation marks, not a
    report. Reported speech starts after the reporting verb; a comma right after it ("as my
    colleague said, ...") closes the report, and the customer's own words follow.
    """
    spans: list[tuple[int, int]] = []
    if '"' in lower or "“" in lower or "„" in lower or "«" in lower or "'" in lower:
        for found in _QUOTED.finditer(lower):
            start, end = found.span()
            if lower[:start].strip(_PUNCT + " ") or lower[end:].strip(_PUNCT + " "):
                spans.append((start, end))
    for found in _REPORTED.finditer(lower):
        start = found.end()
        if lower.startswith(",", start):
            continue
        stop = _REPORTED_END.search(lower, start)
        spans.append((start, stop.start() if stop is not None else len(lower)))
    return spans


def _reported(spans: Sequence[tuple[int, int]], at: int) -> bool:
    return any(start <= at < end for start, end in spans)


_DISMISSIVE_SHORT = re.compile(
    r"^(?:no+|nope|nah|whatever|forget it|forget about it|never ?mind|nvm|useless|pointless"
    r"|seriously|are you serious|really|ugh+|unbelievable|stop|enough|you'?re useless"
    r"|not helpful|no help|this is useless|wtf|come on|omg|meh|lol no)$"
)

_EMPTY: tuple[Marker, ...] = ()

# --- answers to yes/no questions ---------------------------------------------------------------
#
# "No." after "Would you like to add insurance?" answers the question. Read alone it looks like a
# curt, dismissive turn, and the turn signal scores it so; the sentiment rule asks these two
# functions whether the turn is such an answer (it knows the AI turn before it).

# A question that asks for yes or no opens its last sentence with an auxiliary verb, or with
# "any"/"anything" ("Anything else?"); "Which seat...?" and "What time...?" ask for more.
_YES_NO_QUESTION = re.compile(
    r"(?:^|[.!?]\s+)(?:would|do|does|did|is|are|was|were|can|could|shall|should|will|may|have"
    r"|has|had|want|need|any|anything)\b[^.!?]*\?\s*$"
)
# A short "no": one plain decline, no emphasis, no complaint.
_SHORT_NO = re.compile(
    r"^(?:(?:no|nope|nah)(?:,? (?:thanks|thank you|thx|need|i'?m (?:good|fine|ok|okay)"
    r"|(?:that'?s|that is) (?:all|it|everything)))?|not (?:now|today|really|yet))[.!]?$"
)


def asks_yes_no(text: str) -> bool:
    """Whether an AI turn ends with a question that yes or no answers."""
    return _YES_NO_QUESTION.search(text.lower().strip()) is not None


def is_short_no(text: str) -> bool:
    """Whether a customer turn is a bare decline ("No.", "no thanks", "nope"), and nothing else."""
    return _SHORT_NO.match(" ".join(text.lower().replace("’", "'").split())) is not None


# --- analysis ----------------------------------------------------------------------------------


def _squash(raw: float) -> float:
    score = raw / math.sqrt(raw * raw + ALPHA)
    return -1.0 if score < -1.0 else 1.0 if score > 1.0 else score


def analyze(text: str) -> TextSignal:
    """Markers, score and verdict for one customer turn, without conversation context."""
    return _analyze(text, None)


def analyze_turn(text: str, previous_customer_texts: Sequence[str]) -> TextSignal:
    """analyze + a 'repeat_question' marker when this turn repeats an earlier customer turn.

    A repeat is a turn of at least REPEAT_MIN_WORDS words whose content words overlap those of an
    earlier customer turn (also of that length) with Jaccard similarity >= REPEAT_JACCARD.
    """
    return _analyze_turn(text, tuple(previous_customer_texts))


@lru_cache(maxsize=4096)
def _analyze_turn(text: str, previous: tuple[str, ...]) -> TextSignal:
    # A backtest folds each turn through every policy it compares, one after the other; the
    # signal depends on the text alone, so the second policy reuses the first one's.
    return _analyze(text, previous)


def _analyze(text: str, previous: Sequence[str] | None) -> TextSignal:
    if not text or text.isspace():
        return TextSignal(markers=_EMPTY, score=0.0, negative=False, human_request=False)
    lower = text.lower()
    if "’" in lower:
        lower = lower.replace("’", "'")
    # "delayed...again" is three words; ellipses often come without spaces in chat.
    tokens = lower.replace("..", " ").split() if ".." in lower else lower.split()

    markers: list[Marker] = []
    lexicon = _LEXICON
    anchors = _ANCHORS
    rules: set[int] = set()
    before_but = 0.0
    after_but = 0.0
    seen_but = False
    negative_words: list[str] = []
    negation_at = -10
    words = 0
    profanity: list[str] = []
    for index, token in enumerate(tokens):
        first = token[0]
        if first == "@" or (first == "h" and token.startswith("http")):
            continue
        # Emoticons (":(") are lexicon entries only before punctuation is stripped.
        valence = lexicon.get(token)
        word = token.strip(_PUNCT)
        if not word:
            continue
        words += 1
        if valence is None:
            valence = lexicon.get(word)
        found = anchors.get(word)
        if found is not None:
            rules.update(found)
        if word in _FRUSTRATION_WORDS and index - negation_at > 2:
            markers.append(Marker(FRUSTRATION, word))
        elif word in _PROFANITY:
            profanity.append(word)
        if word == "but":
            seen_but = True
            continue
        if word in _NEGATIONS or word.endswith("n't"):
            negation_at = index
            if valence is None:
                continue
        elif valence is None:
            continue
        elif index - negation_at <= 3 and word not in _UNNEGATED:
            valence *= _NEGATION_SCALE
        if valence < 0.0:
            negative_words.append(word)
        if seen_but:
            after_but += valence
        else:
            before_but += valence
    lexicon_sum = before_but * _BEFORE_BUT + after_but * _AFTER_BUT if seen_but else before_but
    # Markers so far are single explicit words ("useless", "ridiculous"): blunt wording.
    blunt = bool(markers)

    human = False
    reported: list[tuple[int, int]] | None = None
    for number in sorted(rules):
        kind, pattern = _COMPILED_RULES[number]
        for match in pattern.finditer(lower):
            if kind == PROBLEM:
                lexicon_sum += PROBLEM_VALENCE
                negative_words.append(match.group())
                continue
            if kind == HUMAN_REQUEST:
                start = match.start()
                if _REFUSAL_BEFORE.search(lower, max(0, start - 40), start):
                    continue
                if reported is None:
                    reported = _reported_spans(lower)
                # Someone else's ask stays a marker: it is what the turn says, and the turn
                # signal was trained on the marker kinds as they are. It is not the customer's
                # request, so the turn does not ask for a person.
                if not _reported(reported, start):
                    human = True
            markers.append(Marker(kind, match.group()))

    if "*" in lower or "$" in lower or "%" in lower or "#" in lower:
        for masked in _MASKED.findall(lower):
            blunt = True
            markers.append(Marker(FRUSTRATION, masked))
    if lexicon_sum <= 0.0:
        if profanity:
            blunt = True
            markers.extend(Marker(FRUSTRATION, word) for word in profanity)
        if "!" in lower or "??" in lower:
            for emphasis in _EMPHASIS.findall(lower):
                blunt = True
                markers.append(Marker(FRUSTRATION, emphasis))
        if _CAPS_ANY.search(text) is not None:
            caps = _CAPS_WORD.findall(text)
            if len(caps) >= 2:
                blunt = True
                markers.append(Marker(FRUSTRATION, " ".join(caps)))

    if lexicon_sum <= NEGATIVE_LEXICON_MARKER_AT and negative_words:
        markers.append(Marker(NEGATIVE_LEXICON, " ".join(negative_words)))

    if words <= SHORT_TURN_MAX_WORDS:
        _short_turn_markers(lower, markers, blunt)

    if previous and words >= REPEAT_MIN_WORDS:
        repeated = _repeated_turn(tokens, previous)
        if repeated is not None:
            markers.append(Marker(REPEAT_QUESTION, repeated))

    raw = lexicon_sum
    negative = False
    for marker in markers:
        raw -= MARKER_WEIGHTS[marker.kind]
        if marker.kind in _VERDICT_KINDS:
            negative = True
    score = _squash(raw)
    if score <= NEGATIVE_THRESHOLD:
        negative = True
    return TextSignal(
        markers=tuple(markers[:MAX_MARKERS]), score=score, negative=negative, human_request=human
    )


def _short_turn_markers(lower: str, markers: list[Marker], blunt: bool) -> None:
    """Clarification and hostility that only show in very short turns ("what?", "whatever").

    A short turn is hostile when it is dismissive, bare punctuation, or blunt (an explicit
    frustration word, profanity, shouting). A short problem report ("I was charged twice") or a
    short clarification ("what do you mean") is not hostile in form.
    """
    core = " ".join(t for t in lower.split() if t[0] != "@" and not t.startswith("http"))
    if not core:
        return
    if _BEWILDERED.match(core):
        markers.append(Marker(CLARIFICATION, core))
        return
    # A turn of bare "??", "?!" or "...?" asks without words.
    bare_question = "?" in core and not core.strip("?!. ")
    if blunt or bare_question or _DISMISSIVE_SHORT.match(core.strip(_PUNCT + " ")):
        markers.append(Marker(HOSTILE_SHORT, core))


def _content_words(tokens: Sequence[str]) -> frozenset[str]:
    words = set()
    for token in tokens:
        if token[0] == "@" or token.startswith("http"):
            continue
        word = token.strip(_PUNCT)
        if len(word) > 1 and word not in _STOPWORDS:
            words.add(word)
    return frozenset(words)


def _repeated_turn(tokens: Sequence[str], previous: Sequence[str]) -> str | None:
    current = _content_words(tokens)
    if len(current) < 2:
        return None
    for earlier in reversed(previous):
        earlier_tokens = earlier.lower().replace("’", "'").replace("..", " ").split()
        if len(earlier_tokens) < REPEAT_MIN_WORDS:
            continue
        other = _content_words(earlier_tokens)
        if len(other) < 2:
            continue
        if len(current & other) / len(current | other) >= REPEAT_JACCARD:
            return earlier if len(earlier) <= 120 else earlier[:117] + "..."
    return None
