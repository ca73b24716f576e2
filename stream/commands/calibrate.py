"""`escalation calibrate`: the monthly review of a month of decisions against their outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stream.commands import settings_of
from stream.commands.backtest import Bootstrap, EventsFile, OnError, OnRunError


def calibrate(
    ctx: typer.Context,
    month: Annotated[str, typer.Option(help="The month to review, YYYY-MM (UTC).")],
    policy: Annotated[Path, typer.Option(help="The policy in force during the month (YAML).")],
    out: Annotated[Path, typer.Option(help="Directory for report.json/.html and proposal.yaml.")],
    events: EventsFile = None,
    from_topics: Annotated[
        bool, typer.Option("--from-topics", help="Read the month from the input topics.")
    ] = False,
    bootstrap: Bootstrap = None,
    on_error: OnRunError = OnError.stop,
    min_cases: Annotated[
        int, typer.Option(help="Judged conversations a change must decide differently, at least.")
    ] = 20,
    max_step: Annotated[
        float, typer.Option(help="Largest move of a confidence threshold in one review.")
    ] = 0.10,
    false_weight: Annotated[float, typer.Option(help="Weight of a false escalation.")] = 1.0,
    missed_weight: Annotated[float, typer.Option(help="Weight of a missed escalation.")] = 1.0,
) -> None:
    """Judge a month, diagnose it, and propose the next policy (report.html, proposal.yaml)."""
    from stream.calibration.cli import calibrate_command
    from stream.calibration.proposal import Settings as ReviewSettings

    code = calibrate_command(
        month,
        policy,
        out,
        events,
        from_topics,
        settings=settings_of(ctx),
        bootstrap=bootstrap,
        on_error=on_error.value,
        review_settings=ReviewSettings(
            false_weight=false_weight,
            missed_weight=missed_weight,
            min_cases=min_cases,
            max_step=max_step,
        ),
    )
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
