"""The `escalation` command: broker topics, schemas, policies, the worker, replay and backtest.

Each command or command group lives in its own module under `stream/commands/` and is registered
below with one line. Settings are read once, here, and reach every command through the context.
Every error the project raises derives from `EscalationError` and ends the command with one
sentence on stderr and the exit code of its kind (stream/errors.py): 2 when the command, an input
file or a policy is wrong, 1 when a run failed or the cluster did not answer.
"""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from stream.commands import (
    backtest,
    calibrate,
    lag,
    policy,
    replay,
    schemas,
    signals,
    topics,
    worker,
)
from stream.errors import EXIT_FAILED, EscalationError, UsageError
from stream.settings import Settings, settings_problem


class _Commands(TyperGroup):
    """Turns an `EscalationError` (or an uncaught OS error) into a sentence and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # click.Context; typer vendors its own click
        try:
            return super().invoke(ctx)
        except EscalationError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            # The reader stopped reading (`escalation ... | head`): click ends the command quietly
            # with exit 1, as it does when `--help` meets a closed pipe. Nothing to print.
            raise
        except OSError as exc:
            typer.echo(f"error: {_os_problem(exc)}", err=True)
            raise typer.Exit(EXIT_FAILED) from None


def _os_problem(exc: OSError) -> str:
    """The file and the system's words, without Python's `[Errno N]` and quoting."""
    if exc.filename is None or not exc.strerror:
        return str(exc)
    return f"{exc.filename}: {exc.strerror}"


app = typer.Typer(
    help="Escalation decisions for live support conversations: topics, policies, worker, replay.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
)


@app.callback()
def _settings(ctx: typer.Context) -> None:
    """Reads the ESCALATION_* settings once for whichever command runs."""
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        raise UsageError(settings_problem(exc)) from None


topics.register(app)
schemas.register(app)
policy.register(app)
worker.register(app)
signals.register(app)
replay.register(app)
backtest.register(app)
lag.register(app)
calibrate.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
