"""`escalation replay`: real airline conversations as input events, to Kafka or to a file."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from stream.command_io import check_output_file
from stream.commands import settings_of
from stream.errors import BadInputError, UsageError


def replay(
    ctx: typer.Context,
    source: Annotated[
        Path | None,
        typer.Option(
            help="The twcs airline conversations (.csv.bz2); default: the one under "
            "ESCALATION_DATASETS_DIR (../shared/data)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of everything synthetic.")] = 7,
    conversations: Annotated[
        int | None,
        typer.Option(min=0, help="Replay the first N conversations (1 or more); all if omitted."),
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help="Write JSON Lines here instead of producing to Kafka.")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Events per second (above 0); as fast as possible if omitted."),
    ] = None,
    simulate: Annotated[
        Path | None,
        typer.Option(
            help="Simulate outcomes that follow from this policy's decisions (docs/simulator.md)."
        ),
    ] = None,
    month: Annotated[
        str | None,
        typer.Option(help="Place the conversations in this month, YYYY-MM (UTC), for a review."),
    ] = None,
) -> None:
    """Replay real airline support conversations as input events, to Kafka or to a file.

    Exit 2 when an option or the corpus file is wrong (--conversations 0 replays nothing); 1 when
    no broker answers, an input topic does not exist or an event is not delivered.
    """
    from stream.replay import CORPUS_PATH, ReplayConfig, iter_events, write_jsonl

    settings = settings_of(ctx)
    if conversations == 0:
        # As a backtest of an empty file: a run that would do nothing is a wrong call.
        raise UsageError(
            "--conversations 0: nothing to replay; give 1 or more, or leave it out to replay all"
        )
    if rate is not None and not rate > 0:
        raise UsageError(f"--rate must be a positive number of events per second, got {rate:g}")
    path = source if source is not None else settings.datasets_dir / CORPUS_PATH
    if jsonl is not None:
        check_output_file(jsonl)
    replay_config = ReplayConfig(seed=seed, conversations=conversations)
    if month is not None:
        from stream.calibration.loop import month_config

        replay_config = month_config(month, seed, conversations)
    events: Iterator[tuple[str, dict[str, Any]]]
    if simulate is not None:
        from stream.commands import load_named_policy
        from stream.core.events import event_to_dict
        from stream.replay.world import simulate as simulated

        policy = load_named_policy(simulate)
        events = (
            (event.type, event_to_dict(event)) for event in simulated(path, replay_config, policy)
        )
    else:
        events = iter_events(path, replay_config)
    # The corpus is read on the first event: a missing or wrong file fails here, before any
    # output exists or any broker is contacted.
    first = next(events, None)
    if first is None:
        raise BadInputError(f"{path} has no usable conversation (no customer turn in any row)")
    stream = itertools.chain([first] if first is not None else [], events)
    if jsonl is not None:
        with jsonl.open("w", encoding="utf-8") as out:
            count = write_jsonl(stream, out)
        typer.echo(f"wrote {count} events to {jsonl}")
        return
    from stream.broker import require_broker, require_topic
    from stream.replay.kafka import default_encoder, produce
    from stream.topics import EVENT_TOPICS

    config = settings.confluent_config()
    topic_for = {kind: settings.topic(name) for kind, name in EVENT_TOPICS.items()}
    cluster = require_broker(config, settings.broker_wait_seconds)
    for kind, topic in topic_for.items():
        require_topic(cluster, topic, f"{kind} events")
    delivered = produce(
        stream,
        settings.bootstrap_servers,
        rate=rate,
        topic_for=topic_for,
        encode=default_encoder(registry=settings.registry()),
        producer_config={k: v for k, v in config.items() if k != "bootstrap.servers"},
        # A progress bar only where a person watches: into a log it is carriage-return noise.
        progress=sys.stderr.isatty(),
    )
    typer.echo(f"delivered {sum(delivered.values())} events: {delivered}")


def register(app: typer.Typer) -> None:
    app.command()(replay)
