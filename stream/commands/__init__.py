"""The commands of `escalation`, one module per command or command group.

Each module has `register(app)`, which `stream/cli.py` calls in one line. A command takes the
settings from the context (`settings_of(ctx)`) and raises an `EscalationError` for anything the
user must hear about; the CLI turns it into one sentence and the exit code of its kind.
"""

from __future__ import annotations

from pathlib import Path

import typer

from stream.core.policy import Policy
from stream.settings import Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the CLI read at start (a test may invoke a command with its own in `obj`)."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):
        raise TypeError("the escalation CLI builds Settings before any command runs")
    return settings


def load_named_policy(path: Path, role: str = "") -> Policy:
    """The policy at `path`; an invalid one is a `PolicyError` whose message names the file."""
    from stream.core.policy import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        label = f"{role} policy" if role else "policy"
        raise PolicyError([("", f"{path}: invalid {label}: {exc}")]) from exc
