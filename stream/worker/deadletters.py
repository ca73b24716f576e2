"""Dead letters that always fit under the broker's record size limit, and that are never skipped.

A dead letter carries the original record whole, plus metadata; for an input near the broker's
limit that is more than the broker accepts. Rather than lose the record, its biggest parts are
cut, and the dead letter names the original by size and SHA-256 beside its topic, partition and
offset, so an operator can still find it upstream.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import structlog

log = structlog.get_logger(__name__)

# What a dead letter keeps of the parts that are usually small, when it has to be cut.
KEY_CAP: Final = 1024
HEADERS_CAP: Final = 8192
REASON_CAP: Final = 4096
# Avro length prefixes and the union branches of the fields cut below.
_SLACK: Final = 64
# The fields of a dead letter that was not cut.
_WHOLE: Final[dict[str, Any]] = {
    "truncated": False,
    "key_size": None,
    "key_sha256": None,
    "value_size": None,
    "value_sha256": None,
    "headers_dropped": 0,
}


class DeadLetterTooLarge(Exception):
    """Even with its value, key, headers and reason cut, the dead letter exceeds the limit."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def deadletter_key(key: bytes | None) -> bytes | None:
    """The Kafka key of a dead letter: the original key, or its hash when too big to repeat."""
    if key is None or len(key) <= KEY_CAP:
        return key
    return f"sha256:{_sha256(key)}".encode()


def fit_deadletter(
    record: dict[str, Any], encode: Callable[[dict[str, Any]], bytes], max_bytes: int
) -> bytes:
    """Encodes the dead letter whole if it fits in `max_bytes`; else cuts it until it does.

    The key, headers and reason are cut to fixed caps first, then the value gets whatever room is
    left. Raises DeadLetterTooLarge when not even that fits (a limit set too small).
    """
    record = {**_WHOLE, **record}
    data = encode(record)
    if len(data) <= max_bytes:
        return data
    cut = dict(record, truncated=True)
    key: bytes | None = record.get("key")
    if key is not None and len(key) > KEY_CAP:
        cut.update(key=key[:KEY_CAP], key_size=len(key), key_sha256=_sha256(key))
    kept: list[dict[str, Any]] = []
    room = HEADERS_CAP
    for header in record.get("headers", []):
        size = len(header["key"].encode()) + len(header["value"] or b"")
        if size > room:
            break
        kept.append(header)
        room -= size
    cut.update(headers=kept, headers_dropped=len(record.get("headers", [])) - len(kept))
    reason: str = record["reason"]
    if len(reason.encode()) > REASON_CAP:
        cut["reason"] = reason.encode()[: REASON_CAP - 3].decode("utf-8", "ignore") + "..."
    value: bytes | None = record.get("value")
    if value is not None:
        cut.update(value=b"", value_size=len(value), value_sha256=_sha256(value))
        room = max_bytes - len(encode(cut)) - _SLACK
        if room < 0:
            raise DeadLetterTooLarge(
                f"a dead letter without its value is {len(encode(cut))} bytes, over {max_bytes}"
            )
        cut["value"] = value[:room]
    data = encode(cut)
    if len(data) > max_bytes:
        raise DeadLetterTooLarge(f"a cut dead letter is {len(data)} bytes, over {max_bytes}")
    return data


async def deliver_until_written(
    send: Callable[[], Awaitable[Any]],
    *,
    where: dict[str, Any],
    on_blocked: Callable[[bool], None] = lambda blocked: None,
    first_backoff: float = 0.5,
    max_backoff: float = 30.0,
    attempt_timeout: float = 60.0,
) -> int:
    """Writes one dead letter, retrying with backoff for as long as the broker refuses it.

    The record it stands for is not acknowledged until this returns, so its offset is never
    committed past an unwritten dead letter: the partition stops instead of losing the record.
    Returns the number of failed attempts. Each failure logs one line; the backoff bounds them.
    An attempt that gets no answer within `attempt_timeout` counts as failed, so a hang shows in
    the log; the retry may then write the dead letter twice, which is better than not at all.
    """
    failures = 0
    backoff = first_backoff
    since = time.monotonic()
    while True:
        try:
            await asyncio.wait_for(send(), attempt_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            on_blocked(True)
            log.error(
                "dead_letter_not_written",
                error=f"{type(exc).__name__}: {exc}",
                attempts=failures,
                blocked_seconds=round(time.monotonic() - since, 1),
                retry_in=backoff,
                **where,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
            continue
        if failures:
            on_blocked(False)
            log.warning("dead_letter_written_after_retries", attempts=failures + 1, **where)
        return failures
