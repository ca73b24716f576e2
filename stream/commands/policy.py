"""`escalation policy`: validate a policy file, or publish it for running workers to adopt."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from stream.commands import load_named_policy, settings_of
from stream.errors import RunError

app = typer.Typer(help="Escalation policies: validate and publish.", no_args_is_help=True)

PUBLISH_TIMEOUT_SECONDS = 30.0


@app.command("validate")
def validate(path: Path) -> None:
    """Validate a policy file; prints warnings, exits 2 naming the field on error."""
    from stream.core.policy import policy_warnings

    policy = load_named_policy(path)
    for warning in policy_warnings(policy):
        typer.echo(f"{path}: warning: {warning}", err=True)
    typer.echo(f"{path}: policy {policy.version} is valid")


@app.command("publish")
def publish(
    ctx: typer.Context,
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
    from confluent_kafka import Producer

    from stream.broker import require_broker
    from stream.core.policy import PolicyError, read_policy_text
    from stream.serde import serde_for_topic

    settings = settings_of(ctx)
    text = read_policy_text(path)
    try:
        version = load_named_policy(path).version
    except PolicyError:
        if not force:
            raise
        version = "invalid"
    record = {
        "version": version,
        "yaml": text,
        "published_at": int(time.time() * 1000),
        "author": author,
    }
    config = settings.confluent_config()
    require_broker(config, settings.broker_wait_seconds)
    producer = Producer(config)
    topic = settings.topic("escalation.policy")
    producer.produce(
        topic, key=name.encode(), value=serde_for_topic("escalation.policy").encode(record)
    )
    if producer.flush(PUBLISH_TIMEOUT_SECONDS):
        raise RunError(
            f"policy {version} not delivered to {topic} within {PUBLISH_TIMEOUT_SECONDS:g} s"
        )
    typer.echo(f"published policy {version} to {topic}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="policy")
