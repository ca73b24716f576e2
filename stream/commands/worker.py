"""`escalation worker`: one streaming worker (Faust) with the settings the CLI read."""

from __future__ import annotations

import sys

import typer

from stream.commands import load_named_policy, settings_of


def worker(ctx: typer.Context) -> None:
    """Run a streaming worker (Faust) with settings from ESCALATION_* variables."""
    from stream.broker import require_broker
    from stream.worker.run import main as run_worker

    settings = settings_of(ctx)
    # Both are checked before Faust starts, so a typo or a dead address is one sentence, not a
    # traceback from inside the framework.
    load_named_policy(settings.policy_path)
    require_broker(settings.confluent_config(), settings.broker_wait_seconds)
    sys.argv = [sys.argv[0], "worker"]
    run_worker(settings)


def register(app: typer.Typer) -> None:
    app.command()(worker)
