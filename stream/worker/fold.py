"""Records folded in batches over cached decoded states; each touched state written once per flush.

Per event the worker used to load the customer's state from the table, decode it, fold one event,
encode it and write it back (one changelog record per event). Here batches are folded over states
kept decoded in a bounded cache in front of the table. A state a batch changes is dirty until the
agent flushes: then each dirty customer is written once, so the changelog gets one record per
customer per flush, however many batches (and events) the flush covers. Decisions go out with
their batch, so latency does not wait for the flush; the agent acks a batch's records only after
the flush that writes their states. A dirty state is never dropped from the cache, and a clean one
holds exactly what the table holds, so dropping clean ones at any time loses nothing.

No Faust import: the agent hands in records in the order to fold them and writes what comes out.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from stream.core import statecodec
from stream.core.decision import Decision
from stream.core.events import Event
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.core.step import step
from stream.worker.handler import Handled, RawRecord, RecordHandler

#: `load_state(customer_id, partition)`: the stored state (stream/core/statecodec.py), or None.
LoadState = Callable[[str, int], "bytes | dict[str, Any] | None"]


def dimension_keys(decision: Decision) -> list[str]:
    """The live counters one decision increments: by action, category and trigger."""
    action = decision.action
    keys = [f"action:{action}", f"category:{decision.category or 'none'}:{action}"]
    keys.extend(f"trigger:{hit.trigger}:{action}" for hit in decision.triggers)
    return keys


class StateCache:
    """Decoded customer states, least recently used dropped first once over `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._states: OrderedDict[str, CustomerState] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, customer_id: str) -> CustomerState | None:
        state = self._states.get(customer_id)
        if state is not None:
            self._states.move_to_end(customer_id)
        return state

    def put(self, customer_id: str, state: CustomerState) -> None:
        self._states[customer_id] = state
        self._states.move_to_end(customer_id)

    def discard(self, customer_id: str) -> None:
        self._states.pop(customer_id, None)

    def trim(self, keep: Callable[[str], bool] | None = None) -> None:
        """Drop the least recently used beyond `size`, never one `keep` says to keep (a dirty
        state, which differs from the table's until it is written)."""
        excess = len(self._states) - self.size
        if excess <= 0:
            return
        if keep is None:
            gone = list(islice(self._states, excess))
        else:
            gone = list(islice((c for c in self._states if not keep(c)), excess))
        for customer_id in gone:
            del self._states[customer_id]

    def clear(self) -> None:
        self._states.clear()

    def keep_only(self, customer_ids: Iterable[str]) -> None:
        kept = {c: s for c in customer_ids if (s := self._states.get(c)) is not None}
        self._states = OrderedDict(kept)

    def __len__(self) -> int:
        return len(self._states)


@dataclass(slots=True)
class Output:
    """What one batch must send; the agent hands it to the producer at once."""

    decisions: list[tuple[bytes, bytes]] = field(default_factory=list)
    handoffs: list[tuple[bytes, bytes]] = field(default_factory=list)
    deadletters: list[tuple[RawRecord, Handled]] = field(default_factory=list)
    # The decisions of each record with its broker append time (ms), for the worker's metrics.
    sent: list[tuple[list[Decision], int | None]] = field(default_factory=list)
    events: int = 0


@dataclass(slots=True)
class Flush:
    """What the batches since the last flush must write; the agent writes it, then acks them."""

    # customer id -> (partition, stored state): one table write per customer touched.
    states: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    # Decision counts by dimension key, summed over the batches.
    counts: Counter[str] = field(default_factory=Counter)


class BatchFold:
    """Folds batches of parsed records over cached states with the handler's encoders."""

    def __init__(self, handler: RecordHandler, load_state: LoadState, cache_size: int) -> None:
        self.handler = handler
        self.load_state = load_state
        self.cache = StateCache(cache_size)
        # customer id -> (partition, events folded since its last write): the dirty states.
        self._dirty: dict[str, tuple[int, list[Event]]] = {}
        self._counts: Counter[str] = Counter()

    @property
    def dirty(self) -> int:
        """Customers whose cached state is not written yet."""
        return len(self._dirty)

    def is_dirty(self, customer_id: str) -> bool:
        """Whether the customer's cached state is newer than the table's."""
        return customer_id in self._dirty

    def _load(self, customer_id: str, partition: int) -> CustomerState | None:
        state = self.cache.get(customer_id)
        if state is not None:
            self.cache.hits += 1
            return state
        self.cache.misses += 1
        stored = self.load_state(customer_id, partition)
        return statecodec.decode(stored) if stored is not None else None

    def fold(self, records: Iterable[tuple[RawRecord, Event | Handled]]) -> Output:
        """Fold `records` in the order given (the event-time order of the merge)."""
        out = Output()
        policy = self.handler.policy  # one policy for the whole batch, as one event sees one
        touched = self._dirty
        counts = self._counts
        encode = self.handler.encode
        for raw, parsed in records:
            out.events += 1
            if isinstance(parsed, Handled):
                out.deadletters.append((raw, parsed))
                continue
            customer_id = parsed.customer_id
            try:
                state = self._load(customer_id, raw.partition)
                result = step(state, parsed, policy, self.handler.model)
                if result.errors or result.conflict is not None:
                    self.handler.report(result, parsed, raw, policy)
                decisions, handoffs = encode(result)
            except Exception as exc:  # a bug in one customer's fold must not stop the partition
                out.deadletters.append((raw, self.handler.failed(raw, exc)))
                if not self._restore(customer_id, touched.get(customer_id), policy):
                    touched.pop(customer_id, None)
                continue
            self.cache.put(customer_id, result.state)
            seen = touched.get(customer_id)
            if seen is None:
                touched[customer_id] = (raw.partition, [parsed])
            else:
                seen[1].append(parsed)
            key = raw.key or customer_id.encode()
            out.decisions.extend((key, value) for value in decisions)
            out.handoffs.extend((key, value) for value in handoffs)
            if result.decisions:
                out.sent.append((result.decisions, raw.timestamp_ms))
            for decision in result.decisions:
                counts.update(dimension_keys(decision))
        return out

    def flush(self) -> Flush:
        """The stored bytes of every dirty state and the counts since the last flush; all clean.

        The whole of a flush at once (the agent's stop, a full cache): the same `flush_some`
        the agent spreads over batches, with no time limit."""
        states, _ = self.flush_some(iter(self.dirty_customers()), math.inf)
        out = Flush(states=states, counts=self.take_counts())
        self.trim()
        return out

    def flush_some(
        self, customer_ids: Iterator[str], budget_s: float
    ) -> tuple[dict[str, tuple[int, bytes]], bool]:
        """The stored bytes of the next customers of `customer_ids` still dirty, encoded until
        `budget_s` of work has run; each is clean after. Also whether `customer_ids` is used up.

        A flush spread over several calls, so no single one holds the event loop for the whole
        second's states; one not dirty any more (written since, or forgotten) is skipped.
        """
        policy = self.handler.policy
        store = self.handler.store
        dirty = self._dirty
        out: dict[str, tuple[int, bytes]] = {}
        until = time.perf_counter() + budget_s
        for customer_id in customer_ids:
            folded = dirty.pop(customer_id, None)
            state = self.cache.get(customer_id) if folded is not None else None
            if folded is not None and state is not None:
                # Trimmed in place to the policy's byte budget, so the cache holds what is stored.
                out[customer_id] = (folded[0], store(state, policy))
            if time.perf_counter() >= until:
                return out, False
        return out, True

    def dirty_customers(self) -> list[str]:
        """The customers whose cached state is not written yet, longest dirty first."""
        return list(self._dirty)

    def take_counts(self) -> Counter[str]:
        """The decision counts since the last time they were taken."""
        counts, self._counts = self._counts, Counter()
        return counts

    def trim(self) -> None:
        """Drop clean states beyond the cache's size (dirty ones stay until written)."""
        self.cache.trim(keep=self.is_dirty)

    def forget(self, partitions: Iterable[int]) -> None:
        """After a rebalance: forget the unwritten states of revoked partitions (their records
        are not acked, so the next owner folds them again from the table) and every clean state
        (the table may have changed under it while another worker owned its partition)."""
        gone = set(partitions)
        self._dirty = {c: d for c, d in self._dirty.items() if d[0] not in gone}
        self.cache.keep_only(self._dirty)

    def _restore(
        self, customer_id: str, folded: tuple[int, list[Event]] | None, policy: Policy
    ) -> bool:
        """Undo a fold that raised half-way: the stored state plus the events folded since.

        `step` changes the state in place, so the cached value may be half-updated; the table
        still holds the state of the last flush, and `step` is deterministic. False when even
        that fails: the customer then keeps the stored state, and nothing since it is written.
        """
        self.cache.discard(customer_id)
        if folded is None:
            return True
        try:
            stored = self.load_state(customer_id, folded[0])
            state = statecodec.decode(stored) if stored is not None else None
            for event in folded[1]:
                state = step(state, event, policy, self.handler.model).state
        except Exception:
            return False
        if state is not None:
            self.cache.put(customer_id, state)
        return True
