"""`escalation backtest` and `escalation export`: history through two policies, or into a file."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from stream.commands import settings_of


class OnError(enum.StrEnum):
    """What a malformed line or an undecodable record does to the run."""

    stop = "stop"
    skip = "skip"


# The options of every command that reads the input history (backtest, export, calibrate).
Bootstrap = Annotated[
    str | None, typer.Option(help="Kafka bootstrap servers (default: the settings').")
]
OnRunError = Annotated[
    OnError, typer.Option(help="A malformed line or record: stop the run, or skip it.")
]
EventsFile = Annotated[Path | None, typer.Option(help="A JSON Lines event file.")]


def backtest(
    ctx: typer.Context,
    policy: Annotated[Path, typer.Option(help="The candidate policy (YAML).")],
    out: Annotated[Path, typer.Option(help="Directory for decisions and the report.")],
    baseline: Annotated[
        Path | None, typer.Option(help="The policy in force; the shipped default if omitted.")
    ] = None,
    events: EventsFile = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Start of a topic time range (ISO-8601 or ms).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="End of the topic time range.")] = None,
    on_error: OnRunError = OnError.stop,
    bootstrap: Bootstrap = None,
) -> None:
    """Replay history through a candidate policy, side by side with the one in force.

    Exit 2 when an option, the event file or a policy is wrong; 1 when no broker answers, an input
    topic does not exist or the range holds no event. A failed run leaves no folder it made.
    """
    from stream.backtest.cli import backtest_command

    code = backtest_command(
        policy,
        baseline,
        events,
        from_,
        to,
        out,
        on_error.value,
        bootstrap,
        settings=settings_of(ctx),
    )
    raise typer.Exit(code)


def export(
    ctx: typer.Context,
    from_: Annotated[str, typer.Option("--from", help="Start (ISO-8601 or epoch ms).")],
    to: Annotated[str, typer.Option(help="End (ISO-8601 or epoch ms).")],
    out: Annotated[Path, typer.Option(help="The JSON Lines event file to write.")],
    bootstrap: Bootstrap = None,
    on_error: Annotated[
        OnError, typer.Option(help="An undecodable record: stop the export, or skip it.")
    ] = OnError.stop,
) -> None:
    """Write a time range of the input topics to a JSON Lines event file (a frozen test set).

    Exit 2 when an option or the output is wrong; 1 when no broker answers, an input topic does
    not exist or the range holds no event (no file is written then).
    """
    from stream.backtest.cli import export_command

    code = export_command(from_, to, out, bootstrap, on_error.value, settings=settings_of(ctx))
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command()(backtest)
    app.command()(export)
