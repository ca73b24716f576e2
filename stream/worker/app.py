"""The Faust application: input topics in, the customer-state table, decisions and handoffs out."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import faust
import structlog
from confluent_kafka import Producer

from stream.core.policy import load_policy, policy_warnings
from stream.security import client_security
from stream.serde import SerdeError, configure_registry_tls, serde_for_topic
from stream.settings import Settings
from stream.topics import INPUT_TOPICS
from stream.worker import health, judging, log_limits, metrics
from stream.worker.deadletters import deadletter_key, deliver_until_written
from stream.worker.handler import RawRecord, RecordHandler
from stream.worker.policy_feed import PolicyFeed, PolicyInForce, rejecting_to_deadletter

log = structlog.get_logger(__name__)

STATE_TABLE = "customer-state"
STATS_TABLE = "decision-stats"


def dimension_keys(decision: dict[str, Any]) -> list[str]:
    """The live counters one decision increments: by action, category and trigger."""
    action = decision["action"]
    keys = [f"action:{action}", f"category:{decision['category'] or 'none'}:{action}"]
    keys.extend(f"trigger:{hit['trigger']}:{action}" for hit in decision["triggers"])
    return keys


def _broker_urls(settings: Settings) -> list[str]:
    return [f"kafka://{host.strip()}" for host in settings.bootstrap_servers.split(",")]


async def _send_and_wait(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
    pending = await topic.send(key=key, value=value)
    await pending


def build_app(settings: Settings) -> faust.App:
    """Everything the worker runs, named explicitly so changelogs and groups survive restarts."""
    policy = load_policy(settings.policy_path)
    for warning in policy_warnings(policy):
        log.warning("policy_warning", version=policy.version, warning=warning)
    in_force = PolicyInForce(policy)
    security = client_security(settings)
    if settings.schema_registry_url:
        configure_registry_tls(security.registry(settings.schema_registry_url))

    app = faust.App(
        settings.app_id,
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
        # Without a linger every changelog write and output record is its own produce request;
        # batching them is most of the throughput, at a few milliseconds of latency.
        producer_linger=0.01,
        # Commit often: after a crash everything since the last commit is processed again, and
        # the deterministic decision ids make those re-sends duplicates the consumer can drop.
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )

    def raw(*names: str) -> faust.TopicT:
        return app.topic(
            *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    inputs = raw(*(settings.topic(name) for name in INPUT_TOPICS))
    decisions = raw(settings.topic("escalation.decisions"))
    handoffs = raw(settings.topic("escalation.handoffs"))
    deadletters = raw(settings.topic("support.deadletter"))

    states = app.Table(
        STATE_TABLE,
        default=None,
        partitions=settings.partitions,
        key_type=str,
        # The handler writes the state's own versioned bytes (stream/core/statecodec.py); an
        # older changelog of JSON objects is read as raw bytes and still decodes.
        value_type=bytes,
        options={"driver": "rocksdict"},
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

    handler = RecordHandler(
        in_force.get,
        topic_prefix=settings.topic_prefix,
        consumer=settings.app_id,
        registry_url=settings.schema_registry_url,
        deadletter_max_bytes=settings.deadletter_max_bytes,
        time_bounds=settings.time_bounds(),
    )

    journal = settings.journal_path.open("a", buffering=1) if settings.journal_path else None

    @app.agent(inputs, name="customer-decisions")
    async def decide(stream: faust.StreamT[bytes]) -> None:
        """Thin glue: load the customer's state, call the handler, write what it returns."""
        async for event in stream.events():
            message = event.message
            if journal is not None:
                journal.write(f"{message.topic}\t{message.partition}\t{message.offset}\n")
            raw_record = RawRecord(
                message.topic,
                message.partition,
                message.offset,
                message.key,
                message.value,
                message.headers or (),
                int(message.timestamp * 1000) if message.timestamp else None,
            )
            handled = handler.handle(raw_record, states.get)
            if handled.deadletter is not None:
                log.warning(
                    "dead_letter",
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    reason=handled.reason,
                )
                letter = handled.deadletter
                # Waits for the broker's acknowledgement: the record is acked (and its offset
                # committed) only once its dead letter is written, however long that takes.
                await deliver_until_written(
                    partial(_send_and_wait, deadletters, deadletter_key(message.key), letter),
                    where={
                        "topic": message.topic,
                        "partition": message.partition,
                        "offset": message.offset,
                    },
                )
                continue
            assert handled.customer_id is not None
            states[handled.customer_id] = handled.state
            key = message.key
            for value in handled.decisions:
                await decisions.send(key=key, value=value)
            for value in handled.handoffs:
                await handoffs.send(key=key, value=value)
            metrics.record_sent(handled, raw_record.timestamp_ms)

    # Each decision fans out to one count per dimension; the counts are re-keyed by dimension
    # through an internal topic so every key's count lives on exactly one partition.
    stat_keys = app.topic(
        f"{settings.app_id}-decision-stats-keys",
        key_type=str,
        value_type=int,  # type: ignore[arg-type]  # Faust's annotation omits plain types
        partitions=settings.partitions,
        internal=True,
    )

    @app.agent(decisions, name="decision-stats-fanout")
    async def fan_out(stream: faust.StreamT[bytes]) -> None:
        """Turns a decision into the dimension keys it counts towards."""
        serde = serde_for_topic("escalation.decisions", settings.schema_registry_url)
        async for value in stream:
            try:
                record = serde.decode(value)
            except SerdeError:  # decisions are ours; a foreign record is counted, not fatal
                await stat_keys.send(key="undecodable", value=1)
                continue
            for key in dimension_keys(record):
                await stat_keys.send(key=key, value=1)

    @app.agent(stat_keys, name="decision-stats")
    async def count(stream: faust.StreamT[int]) -> None:
        async for key, increment in stream.items():
            stats[key] += increment

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

    judging.install(app, settings, in_force.get)

    inputs_named = [settings.topic(name) for name in INPUT_TOPICS]
    version = lambda: in_force.get().version  # noqa: E731
    metrics.install(
        app, input_topics=inputs_named, tables={STATE_TABLE: states}, policy_version=version
    )
    health.install(
        app, input_topics=inputs_named, policy_loaded=feed.healthy, policy_version=version
    )
    return app
