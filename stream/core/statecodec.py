"""The stored form of a customer's state: compact, versioned, and never over its byte budget.

Why: the state used to go to the changelog as JSON that escaped every non-ASCII character (an
emoji became 12 bytes), with no size bound, so one customer sending long emoji messages made a
record the broker refused, and the worker died on it at every restart.

Format version 3 is one version byte, then the record as UTF-8 JSON without escapes or spaces.
The record leaves out the customer's and the account's fields that hold their default (an idle
customer is mostly defaults), which the decoder fills in again: the same version reads both.
Version 3 adds to each turn the lexicon score its text analysis gave (`Turn.lexicon`), which the
next customer turn's context reads instead of analysing that turn again. Version 2 is the same
layout without it, and still loads: its turns read with no kept score, so the next turn's context
analyses the stored texts, as version 2 did (the same features, at the former cost once).
Version 1 (a JSON object, as the table stored it before) still loads, so an old changelog
restores. `encode` holds the result under `max_bytes`: it trims the oldest turns first, leaving
a count on their conversation (`trimmed_turns`), and only then drops whole conversations, oldest
first (keeping their close time, so an escalated one cannot escalate again), then contacts,
oldest first. The trimming changes the state in place, and the backtest applies the same
function after each step (`fit`), so live and replayed decisions stay equal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from stream.core.decision import AccountSnapshot
from stream.core.state import ConversationState, CustomerState

VERSION: Final[int] = 3
# Versions of the same layout that still decode; a field a version did not write takes its default.
_READABLE: Final[frozenset[int]] = frozenset({2, VERSION})
_HEADER: Final[bytes] = bytes([VERSION])
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_loads = json.JSONDecoder().decode
# A bound on the bytes of one turn, conversation, contact besides their text; the estimate that
# decides whether the exact (costlier) size is needed only has to be generous.
_PER_ITEM: Final[int] = 400
_PER_CONVERSATION: Final[int] = 4000


# The record of a customer and of an account with every field at its default.
_STATE_DEFAULTS: Final[dict[str, Any]] = CustomerState.new("").to_record()
_ACCOUNT_DEFAULTS: Final[dict[str, Any]] = AccountSnapshot().to_record()


def _same(value: Any, default: Any) -> bool:
    # The type too: 0 is not 0.0, and False is not 0, once decoded.
    return type(value) is type(default) and value == default


def _compact(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the fields that hold their default, for the customer and its account."""
    out = {
        key: value
        for key, value in record.items()
        if key == "customer_id" or not _same(value, _STATE_DEFAULTS.get(key, _STATE_DEFAULTS))
    }
    account = out.get("account")
    if account is not None:
        out["account"] = {
            key: value
            for key, value in account.items()
            if not _same(value, _ACCOUNT_DEFAULTS.get(key, _ACCOUNT_DEFAULTS))
        }
    return out


def _stored(state: CustomerState) -> bytes:
    return _HEADER + _dumps(_compact(state.to_record())).encode("utf-8")


class StateCodecError(ValueError):
    """Stored bytes that are no known version of the state; names the first byte."""


def encode(state: CustomerState, max_bytes: int) -> tuple[bytes, int]:
    """The stored bytes of `state`, trimmed in place to fit `max_bytes`; and how much was cut."""
    data = _stored(state)
    cut = 0
    while len(data) > max_bytes:
        # Cut about as much as is over (never more: the bytes a cut frees are counted low), then
        # measure again; a few rounds at most, not one encoding per turn.
        excess = len(data) - max_bytes
        freed = 0
        while freed < excess:
            one = _cut_one(state)
            if one < 0:
                break
            cut += 1
            freed += one
        else:
            data = _stored(state)
            continue
        data = _stored(state)
        break
    return data, cut


def decode(stored: bytes | Mapping[str, Any]) -> CustomerState:
    """A state from any stored version: version-3 or 2 bytes, or a version-1 or 0 JSON object."""
    if isinstance(stored, Mapping):  # a table that still decodes JSON hands over the object
        return CustomerState.from_record(_upgrade(stored))
    if not stored:
        raise StateCodecError("empty state record")
    first = stored[0]
    if first in _READABLE:
        record = _loads(stored[1:].decode("utf-8"))
    elif first == 0x7B:  # "{": version 1 or 0, the JSON object the table stored before
        record = _upgrade(_loads(stored.decode("utf-8")))
    else:
        raise StateCodecError(f"unknown state format: first byte {first:#04x}")
    return CustomerState.from_record(record)


def _upgrade(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """Version 0 (short keys, contacts as lists) read as the field-named record of version 1.

    Version 0 is what workers stored before the field-named records: its changelogs must still
    restore, or every customer of an upgraded worker would start from nothing.
    """
    if "customer_id" in record or "c" not in record:
        return record
    return {
        "customer_id": record["c"],
        "watermark": record.get("w", -1),
        "marks": dict(record.get("wm", {})),
        "account": record.get("acc"),
        "account_at": record.get("acc_at", -1),
        "contacts": [
            dict(zip(_V0_CONTACT, values, strict=True)) for values in record.get("ct", ())
        ],
        "conversations": {conv["id"]: _upgrade_conversation(conv) for conv in record.get("cv", ())},
        "closed": {conv_id: at for conv_id, at in record.get("cl", ())},
    }


_V0_CONTACT: Final[tuple[str, ...]] = (
    "contact_id",
    "conversation_id",
    "issue_key",
    "at",
    "category",
    "channel",
    "action",
)


def _upgrade_conversation(conv: Mapping[str, Any]) -> dict[str, Any]:
    escalation = conv.get("es")
    return {
        "conversation_id": conv["id"],
        "opened_at": conv["o"],
        "last_at": conv["l"],
        "category": conv.get("cat"),
        "channel": conv.get("ch", "chat"),
        "turns": [
            {
                "message_id": turn["m"],
                "role": turn["r"],
                "text": turn["x"],
                "at": turn["t"],
                "markers": [list(marker) for marker in turn.get("k", ())],
                "negative": turn.get("n", False),
                "sentiment": turn.get("s"),
                "decided": turn.get("d", False),
            }
            for turn in conv.get("t", ())
        ],
        "attempts": list(conv.get("a", ())),
        "intents": list(conv.get("i", ())),
        "clarifications": conv.get("cl", 0),
        "ai_turns": conv.get("ai", 0),
        "customer_turns": conv.get("cu", 0),
        "human": conv.get("h", False),
        "offer": conv.get("of"),
        "escalation": (
            None
            if escalation is None
            else {
                "event_id": escalation["e"],
                "decision": escalation["d"],
                "package": escalation["p"],
            }
        ),
        "pending_scores": dict(conv.get("ps", {})),
    }


def estimate(state: CustomerState) -> int:
    """A generous bound on the encoded size, cheap enough for every event: 4 bytes a character
    for the texts that can be long, and a fixed allowance for everything else."""
    size = 1000
    for conv in state.conversations.values():
        size += _PER_CONVERSATION + 4 * len(conv.conversation_id)
        for turn in conv.turns:
            size += _PER_ITEM + 4 * len(turn.text) * (2 if turn.markers else 1)
        size += _PER_ITEM * (len(conv.attempts) + len(conv.intents) + len(conv.pending_scores))
        if conv.escalation is not None:
            size += _PER_ITEM * len(conv.escalation.package.transcript)
            size += 4 * sum(len(t.text) for t in conv.escalation.package.transcript)
            size += 4 * _evidence_chars(conv.escalation.decision.triggers)
            size += 4 * _evidence_chars(conv.escalation.package.reasons)
            size += 4 * len(conv.escalation.package.ticket.body) + _PER_CONVERSATION
        if conv.offer is not None:
            size += _PER_CONVERSATION + 4 * _evidence_chars(conv.offer.triggers)
    for contact in state.contacts:
        size += _PER_ITEM + 4 * (len(contact.issue_key) + len(contact.conversation_id))
    size += 100 * len(state.closed)
    account = state.account
    if account is not None:
        size += 4 * (len(account.primary_email or "") + sum(len(f) for f in account.flags))
    return size


def fit(state: CustomerState, max_bytes: int) -> int:
    """Trim `state` in place to fit `max_bytes` as `encode` would; encodes only when the cheap
    estimate says it might not fit. Returns how much was cut."""
    if estimate(state) <= max_bytes:
        return 0
    return encode(state, max_bytes)[1]


def _evidence_chars(hits: Any) -> int:
    return sum(
        len(hit.reason) + sum(len(e.detail) + len(e.text or "") for e in hit.evidence)
        for hit in hits
    )


def _cut_one(state: CustomerState) -> int:
    """Remove the oldest turn of any conversation; with no turn left, the oldest conversation;
    then the oldest contact. Returns a low count of the bytes freed; -1 when nothing is left."""
    oldest: ConversationState | None = None
    for conv in state.conversations.values():
        if conv.turns and (oldest is None or conv.turns[0].at < oldest.turns[0].at):
            oldest = conv
    if oldest is not None:
        turn = oldest.turns.pop(0)
        oldest.trimmed_turns += 1
        return len(turn.text.encode("utf-8")) + 1
    if state.conversations:
        conv = min(state.conversations.values(), key=lambda c: (c.last_at, c.conversation_id))
        del state.conversations[conv.conversation_id]
        if conv.escalation is not None:
            # Remembered as closed to every later event, as an evicted escalated one is.
            state.closed[conv.conversation_id] = -1
        return 1
    if state.contacts:
        contact = state.contacts.pop(0)
        return len(contact.issue_key.encode("utf-8")) + 1
    return -1
