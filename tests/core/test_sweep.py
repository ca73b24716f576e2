"""The idle sweep (stream/core/sweep.py): it shrinks idle customers and never changes a decision.

The property models one partition as the worker sees it: the gate (`EventClock`) with its past
bound on each input stream, other customers' events that move those streams' watermarks, and one
customer whose events come late, out of order or weeks apart. The same admitted events go through
`step` twice, once as the backtest folds them (no sweep) and once with sweeps at arbitrary points
at the floor the worker would use, and both must give the same decisions, packages and errors.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from stream.core import statecodec
from stream.core.events import AccountEvent, Event
from stream.core.eventtime import EventClock, TimeBounds
from stream.core.expiry import horizon_ms
from stream.core.state import CustomerState
from stream.core.step import step
from stream.core.sweep import FloorLedger, partition_floor, sweep
from stream.testing import DAY, HOUR, T0, EventFactory, Run, emitted, history_event, make_policy
from tests.properties import searching

POLICY = make_policy()
LATENESS = POLICY.compiled.lateness_ms
BOUNDS = TimeBounds()
BEHIND = BOUNDS.behind_stream_ms
STREAMS = ("account", "contact", "message", "sentiment", "outcome")
GAPS = [0, 1_000, 60_000, HOUR, 30 * HOUR, 50 * HOUR, 3 * DAY, 8 * DAY, 12 * DAY]
# How far an event is dated before the moment it is produced: up to past the gate's bound.
BACK = [0, 1_000, LATENESS // 2, 2 * LATENESS, 2 * DAY, 6 * DAY, 8 * DAY]
TEXTS = ["hello", "I want to talk to a real person", "This is useless, the third time I ask!!!"]
KINDS = [
    "customer",
    "ai_refund",
    "opened",
    "reopened",
    "closed",
    "outcome",
    "sentiment",
    "account",
    "others",  # other customers' events on every input stream of the partition
    "sweep",
]

spec = st.tuples(
    st.sampled_from(GAPS),
    st.sampled_from(BACK),
    st.sampled_from(KINDS),
    st.sampled_from(["k0", "k1"]),
    st.sampled_from(["billing:a", "billing:b"]),
    st.sampled_from(TEXTS),
)


def outputs(state: CustomerState | None, event: Event) -> tuple[CustomerState, list[Any]]:
    return emitted(state, event, POLICY)


@searching(300)
@given(st.booleans(), st.lists(spec, min_size=1, max_size=50))
# Two contacts, twelve days of other customers' traffic, a sweep, then a third contact dated six
# days back: inside the repeat window of the first two, and admitted (the floor is five days after
# them). A sweep that dropped the contacts a day too early would miss this repeat contact.
@example(
    False,
    [
        (0, 0, "opened", "k0", "billing:a", "hello"),
        (1_000, 0, "opened", "k0", "billing:a", "hello"),
        (12 * DAY, 0, "others", "k0", "billing:a", "hello"),
        (0, 0, "sweep", "k0", "billing:a", "hello"),
        (0, 6 * DAY, "opened", "k0", "billing:a", "hello"),
    ],
)
def test_sweeping_never_changes_a_decision_on_an_admitted_event(
    with_account: bool, specs: list[Any]
) -> None:
    gate = EventClock(BOUNDS)
    now = T0
    for stream in STREAMS:
        gate.admit(stream, now, now)
    backtest: CustomerState | None = None
    swept: CustomerState | None = None
    if with_account:
        first = AccountEvent("acct", "c", T0, tier="gold", primary_email="pat@example.com")
        assert gate.admit("account", T0, T0) is None
        backtest, _ = outputs(None, first)
        swept, _ = outputs(None, first)
    sweeps = 0
    deleted = False
    for n, (gap, back, kind, conv, issue, text) in enumerate(specs):
        now += gap
        if kind == "others":
            for stream in STREAMS:
                gate.admit(stream, now, now)
            continue
        if kind == "sweep":
            floor = partition_floor((gate.marks.get(s) for s in STREAMS), BEHIND)
            assert floor is not None
            if swept is not None:
                sweeps += 1
                if sweep(swept, floor, POLICY) == "gone":
                    swept, deleted = None, True
            continue
        event = history_event(n, kind, now - back, conv, issue, text, scored=f"m{n - 1}")
        assert event is not None
        if gate.admit(event.type, event.occurred_at, now) is not None:
            continue  # dead-lettered by the worker; the backtest of the topics refuses it too
        backtest, expected = outputs(backtest, event)
        swept, got = outputs(swept, event)
        assert got == expected, f"event {n} ({kind}) after {sweeps} sweeps"
    if swept is not None and backtest is not None:
        # And it only ever removes
        assert set(swept.closed) <= set(backtest.closed)
        assert set(swept.conversations) <= set(backtest.conversations)
        assert len(swept.contacts) <= len(backtest.contacts)
        if not deleted:
            assert swept.marks == backtest.marks and swept.watermark == backtest.watermark


def idle_customer(events: EventFactory, *, account: bool) -> Run:
    run = Run(POLICY)
    if account:
        run.feed(events.account())
    run.feed(
        events.contact("conv-1"),
        events.customer("I want to talk to a real person"),
        events.contact("conv-1", action="closed"),
        events.outcome("conv-1"),
    )
    return run


def test_an_idle_customer_shrinks_without_a_new_event(events: EventFactory) -> None:
    # Given a customer with an escalated, closed conversation and a contact, and an account
    run = idle_customer(events, account=True)
    state = run.state
    assert state is not None and state.conversations and state.closed and state.contacts
    before = len(statecodec.encode(state, POLICY.state.max_state_bytes)[0])
    marks = (dict(state.marks), state.watermark)
    # When the partition's floor is far enough past its last event
    window = max(horizon_ms(POLICY), POLICY.compiled.repeat_window_ms)
    assert sweep(state, state.watermark + window + 1, POLICY) == "trimmed"
    # Then only the account is left, the marks are untouched, and it is small
    assert (state.conversations, state.closed, state.contacts) == ({}, {}, [])
    assert (state.marks, state.watermark) == marks
    after = len(statecodec.encode(state, POLICY.state.max_state_bytes)[0])
    assert after <= 512 < before
    # And a second sweep has nothing more to do
    assert sweep(state, state.watermark + window + 1, POLICY) == "kept"


def test_a_customer_with_nothing_left_is_gone(events: EventFactory) -> None:
    run = idle_customer(events, account=False)
    assert run.state is not None
    window = max(horizon_ms(POLICY), POLICY.compiled.repeat_window_ms)
    assert sweep(run.state, run.state.watermark + window + 1, POLICY) == "gone"


def test_nothing_a_window_needs_goes(events: EventFactory) -> None:
    """At the edges: a close exactly the horizon before the floor stays, one ms more goes; the
    same for a contact and the repeat window."""
    run = idle_customer(events, account=True)
    state = run.state
    assert state is not None
    closed_at = state.closed["conv-1"]
    assert sweep(state, closed_at + horizon_ms(POLICY), POLICY) == "kept"
    assert state.closed
    assert sweep(state, closed_at + horizon_ms(POLICY) + 1, POLICY) == "trimmed"
    assert not state.closed
    contact_at = state.contacts[0].at
    window = POLICY.compiled.repeat_window_ms
    assert sweep(state, contact_at + window, POLICY) == "kept" and state.contacts
    assert sweep(state, contact_at + window + 1, POLICY) == "trimmed" and not state.contacts


def test_a_customer_seen_lately_is_left_alone(events: EventFactory) -> None:
    run = idle_customer(events, account=False)
    state = run.state
    assert state is not None
    # Its own watermark is past the floor plus the lateness: its own expiry already ran there
    assert sweep(state, state.watermark - LATENESS, POLICY) == "kept"
    assert state.conversations and state.closed and state.contacts


def test_the_floor_is_unknown_until_every_stream_has_a_watermark() -> None:
    assert partition_floor([T0, None, T0], BEHIND) is None
    assert partition_floor([], BEHIND) is None
    assert partition_floor([T0 + DAY, T0], BEHIND) == T0 - BEHIND
    # A record admitted but not folded yet keeps the floor at its own time
    assert partition_floor([T0 + 30 * DAY], BEHIND, held=[T0]) == T0


# The floor across restarts: one partition with two input streams, records read in any
# interleaving, commits, sweep ticks and crashes at arbitrary points.
FLOOR_STREAMS = ("a", "b")
step_spec = st.tuples(
    st.sampled_from(["produce", "read", "commit", "tick", "crash"]),
    st.sampled_from(FLOOR_STREAMS),
    st.sampled_from(GAPS),
    st.sampled_from(BACK),
)


# Steps the hand-written examples below share.
TWELVE_DAYS_ON = [  # records twelve days on, on both streams, read
    ("produce", "a", 12 * DAY, 0),
    ("produce", "b", 0, 0),
    ("read", "a", 0, 0),
    ("read", "b", 0, 0),
]
SWEEPS_THEN_A_CRASH = [("tick", "a", 0, 0), ("tick", "a", 0, 0), ("crash", "a", 0, 0)]


@searching(300, slow_data=False)
@given(st.lists(step_spec, min_size=1, max_size=80))
# A record read and admitted, other records twelve days later on both streams, a floor past the
# first record, then a crash before the first record is committed: it is read again and must be
# admitted again (the floor waits for its commit).
@example(
    [
        ("produce", "a", 0, 0),
        ("read", "a", 0, 0),
        *TWELVE_DAYS_ON,
        *SWEEPS_THEN_A_CRASH,
        ("read", "a", 0, 0),
    ]
)
# A floor kept from watermarks twelve days on, a crash, then a record dated eight days back on a
# stream the restarted gate has no watermark for: only the kept floor refuses it.
@example(
    [
        ("produce", "a", 0, 0),
        ("produce", "b", 0, 0),
        ("read", "a", 0, 0),
        ("read", "b", 0, 0),
        *TWELVE_DAYS_ON,
        ("commit", "a", 0, 0),
        *SWEEPS_THEN_A_CRASH,
        ("produce", "a", 0, 8 * DAY),
        ("read", "a", 0, 0),
    ]
)
def test_a_kept_floor_refuses_only_what_an_uninterrupted_gate_refuses(steps: list[Any]) -> None:
    """Across crashes the kept floor (FloorLedger) never refuses a record the worker admitted
    before the crash and reads again, nor a new record an uninterrupted gate would admit; and
    every record admitted after a sweep is at or after the floor that sweep used."""
    logs: dict[str, list[int]] = {s: [] for s in FLOOR_STREAMS}
    read = {s: -1 for s in FLOOR_STREAMS}  # the last offset read, per stream
    committed = {s: 0 for s in FLOOR_STREAMS}  # the next offset to process
    first: dict[tuple[str, int], bool] = {}  # whether a record was admitted when first read
    gate = EventClock(BOUNDS)
    reference = EventClock(BOUNDS)  # the gate of a worker that never stops, each record once
    ledger = FloorLedger()
    swept: int | None = None  # the highest floor a sweep used
    now = T0
    for kind, stream, gap, back in steps:
        now += gap
        if kind == "produce":
            logs[stream].append(now - back)
        elif kind == "read":
            offset = read[stream] + 1
            if offset >= len(logs[stream]):
                continue
            read[stream] = offset
            at = logs[stream][offset]
            admitted = gate.admit(stream, at, now, ledger.kept) is None
            if (stream, offset) in first:
                assert admitted or not first[stream, offset], f"{stream}@{offset} refused again"
            else:
                first[stream, offset] = admitted
                if not admitted and ledger.kept is not None and at < ledger.kept:
                    assert reference.admit(stream, at, now) is not None, "floor refused more"
                else:
                    reference.admit(stream, at, now)
            if admitted and swept is not None:
                assert at >= swept, f"{stream}@{offset} admitted under a swept floor"
        elif kind == "commit":
            committed = {s: read[s] + 1 for s in FLOOR_STREAMS}
        elif kind == "tick":
            ripe = ledger.ripe(committed)
            if ripe is not None:
                ledger.keep(ripe)
            if ledger.kept is not None:
                swept = ledger.kept if swept is None else max(swept, ledger.kept)
            marks = (gate.marks.get(s) for s in FLOOR_STREAMS)
            ledger.propose(
                partition_floor(marks, BEHIND), {s: o for s, o in read.items() if o >= 0}
            )
        else:  # a crash: the gate starts empty, the kept floor is restored, reading resumes
            gate = EventClock(BOUNDS)
            ledger = FloorLedger(kept=ledger.kept)
            read = {s: committed[s] - 1 for s in FLOOR_STREAMS}


def test_a_floor_ledger_keeps_one_proposal_and_only_rising_floors() -> None:
    ledger = FloorLedger()
    ledger.propose(T0, {"a": 4})
    ledger.propose(T0 + DAY, {"a": 9})  # one is pending: not replaced
    assert ledger.ripe({"a": 4}) is None  # offset 4 is not committed yet
    assert ledger.ripe({"a": 5}) == T0 and ledger.ripe({"a": 5}) is None
    ledger.keep(T0)
    ledger.propose(T0 - DAY, {"a": 9})  # not above the kept floor
    assert ledger.proposed is None
    ledger.keep(T0 - DAY)
    assert ledger.kept == T0


def test_an_open_conversation_is_kept_however_old_since_its_next_turn_still_counts_the_old_ones(
    events: EventFactory,
) -> None:
    """Why the sweep keeps open conversations: `step` has no idle limit on an open conversation,
    so dropping one would change the decision of its next turn, in any month."""
    angry = "This is useless!!! I asked three times already and nobody helps"
    run = Run(POLICY)
    run.feed(events.contact("conv-1"), events.customer(angry))
    assert [d.action for d in run.decisions] == ["continue"]
    state = run.state
    assert state is not None
    # Given twenty days of silence, and a floor far past every window of the first turn
    later = events.customer("I am so frustrated, this is ridiculous", at=events.clock + 20 * DAY)
    window = max(horizon_ms(POLICY), POLICY.compiled.repeat_window_ms)
    dropped = statecodec.decode(statecodec.encode(state, POLICY.state.max_state_bytes)[0])
    # When the sweep runs, then the open conversation stays
    sweep(state, later.occurred_at - window, POLICY)
    assert "conv-1" in state.conversations
    # And the next turn offers a transfer on the two angry turns, twenty days apart; without the
    # conversation it would continue
    assert [d.action for d in step(state, later, POLICY).decisions] == ["offer_transfer"]
    dropped.conversations.clear()
    assert [d.action for d in step(dropped, later, POLICY).decisions] == ["continue"]
