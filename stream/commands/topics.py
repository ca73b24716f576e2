"""`escalation topics`: create or check the topics defined under topics/, co-partitioning first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stream.commands import settings_of
from stream.errors import EXIT_FAILED


def topics(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option(help="Report drift only; change nothing.")] = False,
    grow_partitions: Annotated[
        bool,
        typer.Option(help="Add partitions to topics that have fewer than defined (moves keys)."),
    ] = False,
    definitions_dir: Annotated[
        Path | None, typer.Option("--dir", help="Topic definitions directory (default: topics/).")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Seconds to wait for each request (default: ESCALATION_BROKER_WAIT_SECONDS).",
        ),
    ] = None,
) -> None:
    """Create or update the topics defined under topics/ and report drift (exit 1 on drift)."""
    from stream.topics import (
        check_copartitioned,
        ensure_topics,
        format_reports,
        load_definitions,
    )

    settings = settings_of(ctx)
    definitions = load_definitions(definitions_dir)
    check_copartitioned(definitions)
    if settings.topic_prefix:
        definitions = {
            settings.topic(name): d.renamed(settings.topic(name)) for name, d in definitions.items()
        }
    reports = ensure_topics(
        settings.confluent_config(),
        definitions,
        apply=not check,
        grow_partitions=grow_partitions,
        timeout=timeout or settings.broker_wait_seconds,
    )
    typer.echo(format_reports(reports))
    if any(r.is_problem for r in reports):
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(topics)
