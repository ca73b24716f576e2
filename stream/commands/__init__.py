"""The commands of `escalation`, one module per command or command group.

Each module has `register(app)`, which `stream/cli.py` calls in one line. A command takes the
settings from the context (`settings_of(ctx)`) and raises an `EscalationError` for anything the
user must hear about; the CLI turns it into one sentence and the exit code of its kind.
"""

from __future__ import annotations

import typer

# The commands' modules import it from here; it lives below them all (stream/command_io.py).
from stream.command_io import load_named_policy as load_named_policy
from stream.settings import Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the CLI read at start (a test may invoke a command with its own in `obj`)."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):
        raise TypeError("the escalation CLI builds Settings before any command runs")
    return settings
