"""`escalation policy`: validate, test and publish policies; capture test cases from history."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from stream.commands import load_named_policy, policy_tests, settings_of
from stream.errors import RunError

app = typer.Typer(
    help="Escalation policies: validate, test, capture test cases, publish.", no_args_is_help=True
)

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
    skip_tests: Annotated[
        bool, typer.Option(help="Publish even if the policy test suite fails.")
    ] = False,
    tests: Annotated[
        Path | None,
        typer.Option(help="The policy test suite; ESCALATION_POLICY_TESTS_PATH if omitted."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Validate, diff and test only; publish nothing.")
    ] = False,
) -> None:
    """Validate, diff, test, then publish a policy; running workers adopt it live.

    Before anything is written: the value diff against the policy in force and the configured
    policy test suite (a failing suite refuses the publication unless --skip-tests).
    """
    from confluent_kafka import Producer

    from stream.broker import require_broker, require_topic
    from stream.commands.policy_tests import publish_gate
    from stream.core.policy import PolicyError, policy_warnings, read_policy_text
    from stream.serde import serde_for_topic

    settings = settings_of(ctx)
    text = read_policy_text(path)
    config = settings.confluent_config()
    topic = settings.topic("escalation.policy")
    if not dry_run:
        # Before the diff and the suite: a publication that cannot reach the cluster, or whose
        # topic is missing, stops here (exit 1, as every command on a missing topic).
        require_topic(require_broker(config, settings.broker_wait_seconds), topic)
    try:
        policy = load_named_policy(path)
    except PolicyError as exc:
        if not force:
            raise
        typer.echo(f"warning: publishing an invalid policy (--force): {exc}", err=True)
        version = "invalid"
    else:
        version = policy.version
        for warning in policy_warnings(policy):
            typer.echo(f"{path}: warning: {warning}", err=True)
        publish_gate(policy, settings, tests=tests, skip_tests=skip_tests)
    if dry_run:
        typer.echo(f"dry run: policy {version} not published")
        return
    record = {
        "version": version,
        "yaml": text,
        "published_at": int(time.time() * 1000),
        "author": author,
    }
    producer = Producer(config)
    refused: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        # flush() counts a refused record as done: only this callback tells the two apart.
        if error is not None:
            refused.append(str(error.str()))

    producer.produce(
        topic,
        key=name.encode(),
        value=serde_for_topic("escalation.policy").encode(record),
        on_delivery=delivered,
    )
    if producer.flush(PUBLISH_TIMEOUT_SECONDS):
        raise RunError(
            f"policy {version} not delivered to {topic} within {PUBLISH_TIMEOUT_SECONDS:g} s"
        )
    if refused:
        raise RunError(f"policy {version} not published to {topic}: {refused[0]}")
    typer.echo(f"published policy {version} to {topic}")


policy_tests.register(app)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="policy")
