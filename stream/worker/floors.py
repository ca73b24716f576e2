"""The floor table: each partition's kept floor, stored with the partition (stream/core/sweep.py).

Why a table: the gate's watermarks live in memory, so after a restart or a takeover they start
empty, and an event older than an earlier sweep's floor would be admitted and meet the windows
that sweep expired. The floor a sweep may use is written to a Faust table of its own, one key per
partition, on that partition of its changelog: the partition's new owner recovers it with the
customer states, before the agent gets a record of the partition, and the gate refuses anything
older (stream/core/eventtime.py).

The floor is read once per partition per assignment, at the first record of the partition the
agent reads (`restore`, called before the record passes the gate), and kept in memory. A floor
is proposed at a sweep tick, kept once every record read on the partition before it is committed
(`FloorLedger`), and used by sweeps only once its changelog write is acknowledged: a crash
between a sweep's deletes and the write of its floor would otherwise leave a new owner a floor
older than what was swept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog

from stream.core.sweep import FloorLedger

log = structlog.get_logger(__name__)

FLOOR_TABLE = "partition-floors"


class FloorStore(Protocol):
    """The table operations the floors need (stream.worker.batches.StateTable has them)."""

    def remember(self, event: Any) -> None: ...
    def forget(self, partitions: Iterable[int]) -> None: ...
    def get(self, key: str, partition: int) -> Any: ...
    def set(self, key: str, partition: int, value: Any) -> Any: ...


def floor_key(partition: int) -> str:
    """The partition's key: written on that partition only, so no two partitions share one."""
    return f"floor-{partition}"


def encode(floor: int) -> bytes:
    return json.dumps({"floor": floor}).encode()


def decode(stored: Any) -> int | None:
    """The floor of a stored value; None for no value. Raises ValueError on anything else."""
    if stored is None:
        return None
    value = json.loads(stored) if isinstance(stored, bytes | str) else stored
    floor = value.get("floor") if isinstance(value, dict) else None
    if not isinstance(floor, int) or isinstance(floor, bool):
        raise ValueError(f"not a stored floor: {stored!r:.200}")
    return floor


class PartitionFloors:
    """The kept floor of each partition the worker reads, restored from and written to its table.

    `committed(topic, partition)` is the consumer's committed offset of an input partition (the
    next record to process), None when unknown.
    """

    def __init__(self, store: FloorStore, committed: Callable[[str, int], int | None]) -> None:
        self._store = store
        self._committed = committed
        self._ledgers: dict[int, FloorLedger] = {}
        # The last offset read per input topic, per partition, since it was assigned.
        self._read: dict[int, dict[str, int]] = {}
        # A floor whose changelog write is not acknowledged yet, and that write.
        self._writing: dict[int, tuple[int, Any]] = {}

    def restore(self, event: Any) -> None:
        """Called with every record the agent reads, before the gate: the first of a partition
        reads its floor from the table (recovered by then); each notes how far it was read."""
        message = event.message
        partition = message.partition
        read = self._read.get(partition)
        if read is None:
            self._store.remember(event)
            stored = self._store.get(floor_key(partition), partition)
            try:
                kept = decode(stored)
            except ValueError as exc:
                # Loud: without its floor the partition's gate is as loose as before a sweep.
                log.error("partition_floor_unreadable", partition=partition, error=str(exc))
                kept = None
            if kept is not None:
                log.info("partition_floor_restored", partition=partition, floor=kept)
            self._ledgers[partition] = FloorLedger(kept=kept)
            read = self._read[partition] = {}
        if message.offset > read.get(message.topic, -1):
            read[message.topic] = message.offset

    def get(self, partition: int) -> int | None:
        """The partition's kept floor: the gate refuses anything older, sweeps use it."""
        ledger = self._ledgers.get(partition)
        return None if ledger is None else ledger.kept

    def advance(self, partition: int, candidate: int | None) -> None:
        """One sweep tick: write a ripe proposal, keep an acknowledged write, propose
        `candidate` (the floor the watermarks allow now) when nothing is pending."""
        ledger = self._ledgers.get(partition)
        if ledger is None:
            return
        if partition not in self._writing:
            committed = {topic: self._committed(topic, partition) for topic in ledger.read}
            ripe = ledger.ripe(committed)
            if ripe is not None:
                sent = self._store.set(floor_key(partition), partition, encode(ripe))
                self._writing[partition] = (ripe, sent)
        writing = self._writing.get(partition)
        if writing is not None:
            floor, sent = writing
            if not sent.done():
                return
            del self._writing[partition]
            error = None if sent.cancelled() else sent.exception()
            if sent.cancelled() or error is not None:
                log.error("partition_floor_not_written", partition=partition, error=repr(error))
            else:
                ledger.keep(floor)
                log.debug("partition_floor_kept", partition=partition, floor=floor)
        ledger.propose(candidate, self._read[partition])

    def forget(self, partitions: Iterable[int]) -> None:
        """Revoked: the next owner restores the floors; so does this worker if they come back."""
        partitions = list(partitions)
        for partition in partitions:
            self._ledgers.pop(partition, None)
            self._read.pop(partition, None)
            self._writing.pop(partition, None)
        self._store.forget(partitions)
