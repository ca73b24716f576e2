"""Length bounds of every free-text field the per-customer state stores, with a trim marker.

Why: the whole-state byte budget (stream/core/statecodec.py) keeps a changelog record under the
broker's limit, but it does so by cutting the oldest turns, so one oversized field (a 360 KB
issue key, a flag list of thousands) would push out the history that decisions need. Each field
is bounded where it is folded, by a limit of the policy's `state` section, so no single input can
take more than its share.

A trimmed value ends in `TRIM_MARKER`, so a reader (and the handoff's human) sees it was cut. A
key that identifies something (an issue key) keeps a digest of the whole value after the marker:
two long keys that share a prefix stay two keys, so repeat-contact counting is not merged by the
trim.
"""

from __future__ import annotations

import hashlib
from typing import Final

# Identifiers are refused rather than cut when longer (stream/core/events.py): a decision names
# its customer, conversation and event by them, so a cut one would name something else.
MAX_ID_CHARS: Final[int] = 256
ID_FIELDS: Final[tuple[str, ...]] = (
    "event_id",
    "customer_id",
    "conversation_id",
    "message_id",
    "contact_id",
    "ticket_id",
    "decision_id",
)
# One character, so a bound in characters is still met with the marker in it.
TRIM_MARKER: Final[str] = "…"
# Hex digits of the whole value kept after the marker of a trimmed key.
_DIGEST_CHARS: Final[int] = 12


def clip(value: str, limit: int) -> str:
    """`value` if it has at most `limit` characters; else its first `limit - 1` and the marker."""
    if len(value) <= limit:
        return value
    return value[: limit - 1] + TRIM_MARKER


def clip_optional(value: str | None, limit: int) -> str | None:
    return None if value is None else clip(value, limit)


def clip_key(value: str, limit: int) -> str:
    """A key cut to `limit` characters that still tells distinct long keys apart: its prefix, the
    marker and a digest of the whole key. Keys within the limit are unchanged."""
    if len(value) <= limit:
        return value
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    keep = max(limit - 1 - _DIGEST_CHARS, 0)
    return value[:keep] + TRIM_MARKER + digest[:_DIGEST_CHARS]


def clip_all(values: tuple[str, ...], limit: int, count: int) -> tuple[str, ...]:
    """At most `count` values, each clipped; a cut list ends with a marker entry saying so."""
    if len(values) > count:
        kept = tuple(clip(v, limit) for v in values[: count - 1])
        return (*kept, f"{TRIM_MARKER}{len(values) - len(kept)} more")
    if all(len(v) <= limit for v in values):
        return values
    return tuple(clip(v, limit) for v in values)
