"""The Faust application: input topics in, the customer-state table, decisions and handoffs out."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import Any, cast

import faust
import structlog
from confluent_kafka import Producer
from faust.types import TP

from stream.core.policy import load_policy, policy_warnings
from stream.core.turn_model import TurnModel
from stream.security import client_security
from stream.settings import Settings
from stream.topics import EVENT_TOPICS, INPUT_TOPICS, load_definitions
from stream.worker import health, judging, log_limits, metrics
from stream.worker.batches import CaughtUp, StateTable, batches
from stream.worker.consumer import AtLeastOnceApp, AtLeastOnceConsumer
from stream.worker.deadletters import deadletter_key, deliver_until_written
from stream.worker.declarations import kept_table, raw_topic
from stream.worker.floors import FLOOR_TABLE, PartitionFloors
from stream.worker.fold import BatchFold
from stream.worker.handler import Handled, RawRecord, RecordHandler
from stream.worker.ordering import EventTimeMerge
from stream.worker.policy_feed import PolicyFeed, PolicyInForce, rejecting_to_deadletter
from stream.worker.sweep import IdleSweep

log = structlog.get_logger(__name__)

STATE_TABLE = "customer-state"
STATS_TABLE = "decision-stats"
#: Work a flush's state writes may add to one batch's stretch of the event loop (see write_some).
FLUSH_SLICE_SECONDS = 0.002
#: Allocations between two collections of the youngest generation (Python's default is 700).
YOUNG_COLLECTION_EVERY = 20_000


def _broker_urls(settings: Settings) -> list[str]:
    return [f"kafka://{host.strip()}" for host in settings.bootstrap_servers.split(",")]


def _compacted_topics(settings: Settings) -> set[str]:
    """The worker's topics whose offsets may be missing at the broker (compaction)."""
    return {
        settings.topic(name)
        for name, definition in load_definitions().items()
        if "compact" in definition.config["cleanup.policy"]
    }


async def _send_and_wait(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
    pending = await topic.send(key=key, value=value)
    await pending


def build_app(settings: Settings, *, model: TurnModel | None = None) -> faust.App:
    """Everything the worker runs, named explicitly so changelogs and groups survive restarts.

    `model` is the turn model `step` scores customer turns with (None: the shipped one)."""
    policy = load_policy(settings.policy_path)
    for warning in policy_warnings(policy):
        log.warning("policy_warning", version=policy.version, warning=warning)
    in_force = PolicyInForce(policy)
    security = client_security(settings)

    app = AtLeastOnceApp(
        settings.app_id,
        compacted=_compacted_topics(settings),
        broker=_broker_urls(settings),
        broker_credentials=security.faust_credentials(),
        store="rocksdb://",
        datadir=str(settings.data_dir / settings.app_id),
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        web_host=settings.web_host,
        web_port=settings.web_port,
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        producer_linger=settings.producer_linger_seconds,
        # Commit often: after a crash everything since the last commit is processed again, and
        # the deterministic decision ids make those re-sends duplicates the consumer can drop.
        # Only by time: a commit every N acks runs inside Faust's fetch loop, which then hands
        # nothing to the agent until the producer is flushed and the commit is done.
        broker_commit_every=1_000_000_000,
        broker_commit_interval=1.0,
        fetch_min_bytes=settings.fetch_min_bytes,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )

    inputs = raw_topic(app, *(settings.topic(name) for name in INPUT_TOPICS))
    decisions = raw_topic(app, settings.topic("escalation.decisions"))
    handoffs = raw_topic(app, settings.topic("escalation.handoffs"))
    deadletters = raw_topic(app, settings.topic("support.deadletter"))

    states = kept_table(
        app,
        STATE_TABLE,
        partitions=settings.partitions,
        # The handler writes the state's own versioned bytes (stream/core/statecodec.py); an
        # older changelog of JSON objects is read as raw bytes and still decodes.
        value_type=bytes,
        help="Per-customer state folded by the decision core; exact event-time windows live here.",
    )
    # Live diagnostics for the calibration loop: counts of decisions by category, trigger and
    # action in tumbling windows of processing time (see docs/worker.md for why not event time).
    stats = app.Table(
        STATS_TABLE,
        default=int,
        partitions=settings.partitions,
        key_type=str,
        value_type=int,
        help="Decisions by category/trigger/action in tumbling windows.",
    ).tumbling(
        timedelta(seconds=settings.stats_window_seconds),
        expires=timedelta(seconds=settings.stats_window_seconds * 24),
    )

    # Each partition's kept floor (stream/worker/floors.py), recovered with the partition: the gate
    # refuses what an earlier sweep may have expired, after a restart or a takeover too.
    floor_table = kept_table(
        app,
        FLOOR_TABLE,
        partitions=settings.partitions,
        value_type=bytes,
        help="The idle sweep's kept floor of each partition; the gate refuses older events.",
    )

    def committed(topic: str, partition: int) -> int | None:
        offsets = cast(Any, app.consumer)._committed_offset
        return cast("int | None", offsets.get(TP(topic, partition)))

    floors = PartitionFloors(StateTable(floor_table), committed)

    handler = RecordHandler(
        in_force.get,
        topic_prefix=settings.topic_prefix,
        consumer=settings.app_id,
        registry=settings.registry(),
        deadletter_max_bytes=settings.deadletter_max_bytes,
        time_bounds=settings.time_bounds(),
        model=model,
        floor=floors.get,
    )

    journal = settings.journal_path.open("a", buffering=1) if settings.journal_path else None
    # Decision counts go straight from the batch to the re-keyed topic, one increment per
    # dimension key per batch, so every key's count lives on exactly one partition.
    stat_keys = app.topic(
        f"{settings.app_id}-decision-stats-keys",
        key_type=str,
        value_type=int,  # type: ignore[arg-type]  # Faust's annotation omits plain types
        partitions=settings.partitions,
        internal=True,
    )
    input_types = {settings.topic(name): kind for kind, name in EVENT_TOPICS.items()}
    table = StateTable(states)
    folder = BatchFold(handler, table.get, settings.state_cache_size)
    merge: EventTimeMerge[Any] = EventTimeMerge(
        input_types, idle_ms=settings.order_idle_ms, max_held=settings.order_max_held
    )
    caught_up = CaughtUp(app)
    unacked: list[Any] = []  # events folded, outputs handed over, states not yet written
    draining: list[Any] = []  # events whose states are being written (a flush under way)
    # Expires customers with no new event, by each partition's event time (stream/worker/sweep.py).
    idle = IdleSweep(
        table,
        folder,
        floors,
        handler.clock,
        input_types,
        merge.times,
        settings.idle_sweep_keys_per_tick,
        work_slice_s=settings.work_slice_seconds,
    )

    @app.agent(inputs, name="customer-decisions")
    async def decide(stream: faust.StreamT[bytes]) -> None:
        """Thin glue: merge each batch into event-time order, fold it, send its outputs; every
        `state_flush_seconds` write the touched states (a few with each batch that follows),
        then ack the records folded before the flush began."""
        # The idle wait of the merge counts only time spent waiting for input: while a batch is
        # folded nothing can arrive, and a slow fold must not make the merge give up on order.
        await table.verify_at_start(input_types)
        # The modules, functions and tables of a started worker (about 120,000 objects) never
        # become garbage, yet every full collection walked them: 50-75 ms of CPU with the loop
        # stopped, every 15 s or so under load. Frozen, a full collection walks only what came
        # after (about 9 ms); the collection first leaves no start-up garbage behind for good.
        gc.collect()
        gc.freeze()
        # With Python's default of a young collection every 700 allocations, a batch's records
        # (alive until their flush, up to a second) outlived several young collections and were
        # promoted to the oldest generation, which then filled up fast enough to force a full
        # collection every few seconds (up to 33 ms with the loop stopped, at 800 events/s).
        # Every 20,000 allocations they die young instead: in a 20 s run at 800 events/s,
        # 5 young collections (39 ms) and no full one, instead of 342 collections (300 ms).
        gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
        consumer = cast(AtLeastOnceConsumer, app.consumer)
        waited = 0.0
        mark = time.monotonic()
        flushed_at = time.monotonic()
        writing: Iterator[str] | None = None  # the customers of a flush still to write

        async def write_some(budget_s: float) -> None:
            """Hand the next of the flush's states to the producer; once every one is, the
            counts too, then ack what they cover.

            The states of a flush are written over the batches that follow it, about
            `FLUSH_SLICE_SECONDS` of work with each, so a second's states do not hold the event
            loop (and every decision that arrives meanwhile) at once; the agent still awaits
            nothing in between, so no other agent runs in the middle of a batch. A customer
            folded again before its turn is written with what it holds then. Faust's commit
            flushes the producer before it commits, so an acked offset never runs ahead of the
            outputs and state writes of its record (at least once). A record folded again after
            a crash re-sends its decisions (same ids) from the state written before.
            """
            nonlocal writing
            assert writing is not None
            states, done = folder.flush_some(writing, budget_s)
            for customer_id, (partition, state) in states.items():
                table.set(customer_id, partition, state)
            # Not swept until its records are surely committed (stream/worker/sweep.py).
            idle.written(states)
            if not done:
                return
            writing = None
            for dimension, increment in folder.take_counts().items():
                stat_keys.send_soon(key=dimension, value=increment)
            for event in draining:
                await stream.ack(event)
            draining.clear()
            folder.trim()

        async def flush(budget_s: float) -> None:
            """Start writing every dirty state: the records folded so far are acked once the
            last of them is handed to the producer."""
            nonlocal writing, flushed_at
            draining.extend(unacked)
            unacked.clear()
            writing = iter(folder.dirty_customers())
            flushed_at = time.monotonic()
            await write_some(budget_s)

        try:
            async for batch in batches(
                stream,
                settings.batch_size,
                settings.batch_wait_seconds,
                lambda: merge.held > 0 or bool(unacked) or bool(draining),
            ):
                waited += time.monotonic() - mark
                for event in batch:
                    message = event.message
                    if not consumer.admit(message, "customer-decisions"):
                        # A record before it on its partition never arrived: the consumer
                        # seeks back to that one, and this one comes again after it.
                        continue
                    floors.restore(event)
                    raw_record = RawRecord.of(message)
                    parsed = handler.parse(raw_record)
                    at = None if isinstance(parsed, Handled) else parsed.occurred_at
                    merge.add(
                        message.topic,
                        message.partition,
                        message.offset,
                        at,
                        (raw_record, parsed, event),
                    )
                ready = merge.release(waited, caught_up)
                if ready:
                    await hand_over(ready)
                    unacked.extend(event for _, _, event in ready)
                if folder.dirty >= settings.state_cache_size:
                    # The cache is full of unwritten states: everything is written now.
                    await flush(math.inf)
                elif writing is not None:
                    await write_some(FLUSH_SLICE_SECONDS)
                elif unacked and time.monotonic() - flushed_at >= settings.state_flush_seconds:
                    await flush(FLUSH_SLICE_SECONDS)
                mark = time.monotonic()
        except asyncio.CancelledError:
            # Stopping: what is folded is written and acked, so a clean restart does not fold it
            # again. Nothing here waits, so it completes although the task is cancelled. Not on
            # a crash: a write that raised half-way must leave its records unacked.
            if unacked or draining:
                await flush(math.inf)
            raise

    async def hand_over(ready: list[tuple[RawRecord, Any, Any]]) -> None:
        """Fold released records and hand their outputs to the producer without waiting."""
        for _, _, event in ready:
            table.remember(event)
        if journal is not None:
            journal.writelines(f"{r.topic}\t{r.partition}\t{r.offset}\n" for r, _, _ in ready)
        out = folder.fold((r, p) for r, p, _ in ready)
        for raw_record, dead in out.deadletters:
            where = raw_record.where
            log.warning("dead_letter", **where, reason=dead.reason)
            assert dead.deadletter is not None
            # Waits for the broker's acknowledgement: the record is acked (and its offset
            # committed) only once its dead letter is written, however long that takes.
            await deliver_until_written(
                partial(
                    _send_and_wait,
                    deadletters,
                    deadletter_key(raw_record.key),
                    dead.deadletter,
                ),
                where=where,
            )
        for key, value in out.decisions:
            decisions.send_soon(key=key, value=value)
        for key, value in out.handoffs:
            handoffs.send_soon(key=key, value=value)
        for decided, append_ms in out.sent:
            metrics.record_decisions(decided, append_ms=append_ms)
        metrics.record_handoffs(len(out.handoffs))

    if settings.idle_sweep_seconds > 0:

        @app.timer(settings.idle_sweep_seconds)  # type: ignore[untyped-decorator]  # unannotated in Faust
        async def sweep_idle() -> None:
            """Expire customers with no new event, by each partition's event time."""
            await idle.run()

    @app.on_partitions_revoked.connect
    def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Held records of a revoked partition go to its next owner; cached states may change."""
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        partitions = {tp.partition for tp in revoked if tp.topic in input_types}
        merge.drop(partitions)
        table.forget(partitions)
        folder.forget(partitions)
        floors.forget(partitions)
        # Not acked, so folded again by the next owner from the state the table has.
        unacked[:] = [e for e in unacked if e.message.partition not in partitions]
        draining[:] = [e for e in draining if e.message.partition not in partitions]

    @app.agent(stat_keys, name="decision-stats")
    async def count(stream: faust.StreamT[int]) -> None:
        consumer = cast(AtLeastOnceConsumer, app.consumer)
        manual = cast(Any, stream).noack()
        async for event in manual.events():
            # A count arriving after a missing one waits for it (the partition is sought back).
            if consumer.admit(event.message, "decision-stats"):
                stats[event.key] += event.value
                await manual.ack(event)

    @app.page("/stats/")
    async def stats_view(web: Any, request: Any) -> Any:
        # A windowed table's items() has now(); Faust types it as a plain ItemsView.
        return web.json({key: value for key, value in stats.items().now()})  # type: ignore[attr-defined]

    @app.page("/policy/")
    async def policy_view(web: Any, request: Any) -> Any:
        return web.json({"version": in_force.get().version, "feed": feed.health.body()})

    feed_producer = Producer(settings.confluent_config())
    feed = PolicyFeed(
        in_force,
        settings.topic("escalation.policy"),
        settings.confluent_config(),
        rejecting_to_deadletter(
            feed_producer,
            settings.topic("escalation.policy"),
            settings.topic("support.deadletter"),
            handler.deadletter,
        ),
    )

    @app.task  # type: ignore[untyped-decorator]  # Faust's task decorator is unannotated
    async def follow_policy() -> None:
        # Faust has installed its log handlers by now; repeated lines get limited on them too.
        log_limits.install()
        feed.start()

    judging.install(app, settings, in_force.get, handler.deadletter)

    inputs_named = [settings.topic(name) for name in INPUT_TOPICS]
    version = lambda: in_force.get().version  # noqa: E731
    metrics.install(
        app, input_topics=inputs_named, tables={STATE_TABLE: states}, policy_version=version
    )
    health.install(
        app, input_topics=inputs_named, policy_loaded=feed.healthy, policy_version=version
    )
    return app
