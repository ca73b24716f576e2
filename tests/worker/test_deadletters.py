"""Dead letters fit under the size limit whatever the input, and are retried, never skipped."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from stream.core.policy import default_policy
from stream.serde import serde_for_topic
from stream.worker.deadletters import (
    KEY_CAP,
    DeadLetterTooLarge,
    deadletter_key,
    deliver_until_written,
    fit_deadletter,
)
from stream.worker.handler import DEADLETTER_MAX_BYTES, RawRecord, RecordHandler

MIB = 1024 * 1024
SERDE = serde_for_topic("support.deadletter")


def letter(data: bytes) -> dict[str, Any]:
    return SERDE.decode(data)


@pytest.fixture
def handler() -> RecordHandler:
    return RecordHandler(default_policy, consumer="tests")


def test_a_small_dead_letter_is_kept_whole(handler: RecordHandler) -> None:
    data = handler.deadletter(RawRecord("support.messages", 1, 7, b"c-1", b"junk"), "decode", "x")
    got = letter(data)
    assert got["value"] == b"junk" and got["key"] == b"c-1"
    assert got["truncated"] is False and got["value_size"] is None


def test_an_input_near_one_mib_gives_a_cut_dead_letter_that_names_the_original(
    handler: RecordHandler,
) -> None:
    # Given a record just under 1 MiB with a big key and many headers
    value = bytes(range(256)) * (MIB // 256 - 16)
    key = b"k" * 5000
    headers = [(f"h{i}", b"v" * 100) for i in range(200)]
    raw = RawRecord("support.messages", 3, 1234, key, value, headers, 99)

    # When its dead letter is built
    data = handler.deadletter(raw, "decode", "bad bytes " * 2000)

    # Then it fits, says it was cut, and names the original by size, hash and position
    assert len(data) <= DEADLETTER_MAX_BYTES
    got = letter(data)
    assert got["truncated"] is True
    assert (got["source_topic"], got["partition"], got["offset"]) == ("support.messages", 3, 1234)
    assert got["value_size"] == len(value)
    assert got["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert value.startswith(got["value"]) and len(got["value"]) > 900_000
    assert got["key_size"] == 5000 and got["key"] == key[:KEY_CAP]
    assert got["key_sha256"] == hashlib.sha256(key).hexdigest()
    assert got["headers_dropped"] > 0
    assert len(got["headers"]) + got["headers_dropped"] == 200
    assert len(got["reason"]) <= 4096 and got["reason"].startswith("bad bytes")


@pytest.mark.parametrize("limit", [65_536, 200_000, DEADLETTER_MAX_BYTES])
def test_every_limit_is_respected(limit: int) -> None:
    handler = RecordHandler(default_policy, deadletter_max_bytes=limit)
    raw = RawRecord("support.accounts", 0, 1, b"c", b"\xff" * (2 * MIB))
    data = handler.deadletter(raw, "decode", "too big")
    assert len(data) <= limit
    assert letter(data)["value_size"] == 2 * MIB


def test_a_limit_too_small_for_the_metadata_is_an_error_not_a_bigger_letter() -> None:
    record = {
        "source_topic": "t",
        "partition": 0,
        "offset": 0,
        "timestamp": None,
        "key": None,
        "value": b"x" * 5000,
        "headers": [],
        "reason": "r",
        "error_type": "decode",
        "failed_at": 0,
        "consumer": "tests",
    }
    with pytest.raises(DeadLetterTooLarge):
        fit_deadletter(record, SERDE.encode, 100)


def test_a_huge_key_is_replaced_by_its_hash_as_the_record_key() -> None:
    assert deadletter_key(b"c-1") == b"c-1"
    assert deadletter_key(None) is None
    big = b"x" * (KEY_CAP + 1)
    assert deadletter_key(big) == f"sha256:{hashlib.sha256(big).hexdigest()}".encode()


def test_a_refused_dead_letter_is_retried_until_written_never_skipped() -> None:
    # Given a broker that refuses the dead letter three times
    attempts: list[int] = []
    blocked: list[bool] = []

    async def send() -> None:
        attempts.append(1)
        if len(attempts) <= 3:
            raise RuntimeError("MessageSizeTooLarge")

    # When it is delivered
    failures = asyncio.run(
        deliver_until_written(
            send, where={"offset": 5}, on_blocked=blocked.append, first_backoff=0.001
        )
    )

    # Then it was retried until written, and the block was reported and lifted
    assert failures == 3 and len(attempts) == 4
    assert blocked == [True, True, True, False]


def test_an_attempt_that_hangs_is_timed_out_logged_and_retried() -> None:
    attempts: list[int] = []

    async def send() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(3600)  # the broker never answers this one

    failures = asyncio.run(
        deliver_until_written(send, where={}, first_backoff=0.001, attempt_timeout=0.05)
    )
    assert failures == 1 and len(attempts) == 2
