"""The `escalation` command: broker topics, schemas, policies, the worker, replay and backtest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stream.settings import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
schemas_app = typer.Typer(help="Avro contracts under schemas/.", no_args_is_help=True)
policy_app = typer.Typer(help="Escalation policies: validate and publish.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(policy_app, name="policy")


@app.command()
def topics(
    check: Annotated[bool, typer.Option(help="Report drift only; change nothing.")] = False,
    grow_partitions: Annotated[
        bool, typer.Option(help="Add partitions to topics that have fewer than defined.")
    ] = False,
) -> None:
    """Create or update the topics defined under topics/ and report drift."""
    from stream.topics import ensure_topics, format_reports, load_definitions

    settings = Settings()
    definitions = load_definitions()
    if settings.topic_prefix:
        definitions = {
            settings.topic(name): d.model_copy(update={"name": settings.topic(name)})
            for name, d in definitions.items()
        }
    reports = ensure_topics(
        settings.confluent_config(), definitions, apply=not check, grow_partitions=grow_partitions
    )
    typer.echo(format_reports(reports))
    if any(r.status == "drift" for r in reports):
        raise typer.Exit(1)


@schemas_app.command("freeze")
def schemas_freeze() -> None:
    """Record every changed top-level schema as its next released version."""
    from stream.serde import freeze
    from stream.topics import load_definitions

    for name in sorted({d.value.schema_name for d in load_definitions().values()}):
        path = freeze(name)
        typer.echo(f"{name}: {'released ' + str(path) if path else 'unchanged'}")


@policy_app.command("validate")
def policy_validate(path: Path) -> None:
    """Validate a policy file; prints warnings, exits 1 naming the field on error."""
    from stream.core.policy import PolicyError, load_policy, policy_warnings

    try:
        policy = load_policy(path)
    except PolicyError as exc:
        typer.echo(f"{path}: invalid policy: {exc}", err=True)
        raise typer.Exit(1) from exc
    for warning in policy_warnings(policy):
        typer.echo(f"{path}: warning: {warning}", err=True)
    typer.echo(f"{path}: policy {policy.version} is valid")


@policy_app.command("publish")
def policy_publish(
    path: Path,
    author: Annotated[str | None, typer.Option(help="Who publishes it.")] = None,
    name: Annotated[
        str, typer.Option(help="Policy name: the record key, compaction keeps the latest.")
    ] = "default",
    force: Annotated[
        bool, typer.Option(help="Publish even if invalid (workers will refuse it).")
    ] = False,
) -> None:
    """Publish a policy file to the compacted policy topic; running workers adopt it live."""
    import time

    from confluent_kafka import Producer

    from stream.core.policy import PolicyError, load_policy
    from stream.serde import serde_for_topic

    settings = Settings()
    try:
        version = load_policy(path).version
    except PolicyError as exc:
        if not force:
            typer.echo(f"{path}: invalid policy, not published: {exc}", err=True)
            raise typer.Exit(1) from exc
        version = "invalid"
    record = {
        "version": version,
        "yaml": path.read_text(),
        "published_at": int(time.time() * 1000),
        "author": author,
    }
    producer = Producer(settings.confluent_config())
    producer.produce(
        settings.topic("escalation.policy"),
        key=name.encode(),
        value=serde_for_topic("escalation.policy").encode(record),
    )
    if producer.flush(30):
        typer.echo("policy not delivered within 30 s", err=True)
        raise typer.Exit(1)
    typer.echo(f"published policy {version} to {settings.topic('escalation.policy')}")


@app.command()
def worker() -> None:
    """Run a streaming worker (Faust) with settings from ESCALATION_* variables."""
    from stream.worker.run import main as run_worker

    sys.argv = [sys.argv[0], "worker"]
    run_worker(Settings())


@app.command()
def signals(
    input: Annotated[Path, typer.Option("--input", help="JSON Lines of {id, text}.")],
    output: Annotated[Path | None, typer.Option(help="Where to write; stdout if omitted.")] = None,
) -> None:
    """Negative/frustration markers and a verdict for each line of text."""
    from stream.signals import SignalsInputError, run_signals

    try:
        if output is None:
            run_signals(input, sys.stdout)
        else:
            with output.open("w") as out:
                run_signals(input, out)
    except (SignalsInputError, OSError) as exc:
        typer.echo(f"escalation signals: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def replay(
    source: Annotated[Path, typer.Option(help="The twcs airline conversations (.csv.bz2).")] = Path(
        "../shared/data/twcs-airlines/airlines_raw.csv.bz2"
    ),
    seed: Annotated[int, typer.Option(help="Seed of everything synthetic.")] = 7,
    conversations: Annotated[
        int | None, typer.Option(help="Replay the first N conversations; all if omitted.")
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help="Write JSON Lines here instead of producing to Kafka.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Events per second; as fast as possible if omitted.")
    ] = None,
) -> None:
    """Replay real airline support conversations as input events, to Kafka or to a file."""
    from stream.replay import ReplayConfig, iter_events, write_jsonl

    config = ReplayConfig(seed=seed, conversations=conversations)
    events = iter_events(source, config)
    if jsonl is not None:
        with jsonl.open("w", encoding="utf-8") as out:
            count = write_jsonl(events, out)
        typer.echo(f"wrote {count} events to {jsonl}")
        return
    from stream.replay_kafka import produce
    from stream.topics import EVENT_TOPICS

    settings = Settings()
    delivered = produce(
        events,
        settings.bootstrap_servers,
        rate=rate,
        topic_for={kind: settings.topic(name) for kind, name in EVENT_TOPICS.items()},
        producer_config={
            k: v for k, v in settings.confluent_config().items() if k != "bootstrap.servers"
        },
    )
    typer.echo(f"delivered {sum(delivered.values())} events: {delivered}")


@app.command()
def backtest(
    policy: Annotated[Path, typer.Option(help="The candidate policy (YAML).")],
    out: Annotated[Path, typer.Option(help="Directory for decisions and the report.")],
    baseline: Annotated[
        Path | None, typer.Option(help="The policy in force; the shipped default if omitted.")
    ] = None,
    events: Annotated[Path | None, typer.Option(help="A JSON Lines event file.")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Start of a topic time range (ISO-8601 or ms).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="End of the topic time range.")] = None,
    on_error: Annotated[
        str, typer.Option(help="A malformed line or record: stop (default) or skip it.")
    ] = "stop",
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers.")] = None,
) -> None:
    """Replay history through a candidate policy, side by side with the one in force."""
    from stream.backtest.cli import backtest_command

    raise typer.Exit(
        backtest_command(policy, baseline, events, from_, to, out, on_error, bootstrap)
    )


@app.command()
def export(
    from_: Annotated[str, typer.Option("--from", help="Start (ISO-8601 or epoch ms).")],
    to: Annotated[str, typer.Option(help="End (ISO-8601 or epoch ms).")],
    out: Annotated[Path, typer.Option(help="The JSON Lines event file to write.")],
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers.")] = None,
    on_error: Annotated[str, typer.Option(help="An undecodable record: stop or skip.")] = "stop",
) -> None:
    """Write a time range of the input topics to a JSON Lines event file (a frozen test set)."""
    from stream.backtest.cli import export_command

    raise typer.Exit(export_command(from_, to, out, bootstrap, on_error))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
