"""`escalation worker`: one streaming worker (Faust) with the settings the CLI read."""

from __future__ import annotations

import socket
import sys

import typer

from stream.commands import load_named_policy, settings_of
from stream.errors import RunError


def worker(ctx: typer.Context) -> None:
    """Run a streaming worker (Faust) with settings from ESCALATION_* variables."""
    from stream.broker import require_broker
    from stream.worker.run import main as run_worker

    settings = settings_of(ctx)
    # All are checked before Faust starts, so a typo, a port in use or a dead address is one
    # sentence, not a traceback from inside the framework.
    load_named_policy(settings.policy_path)
    require_broker(settings.confluent_config(), settings.broker_wait_seconds)
    _require_free_port(settings.web_port)
    sys.argv = [sys.argv[0], "worker"]
    run_worker(settings)


def _require_free_port(port: int) -> None:
    """The web port (metrics, health) must be free on every interface, where Faust binds it;
    taken, it is exit 1, as `lag --serve` on a port in use."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - the address Faust's web server binds
        except OSError as exc:
            raise RunError(
                f"cannot serve the worker's metrics and health on port {port} "
                f"(ESCALATION_WEB_PORT): {exc.strerror or exc}"
            ) from None


def register(app: typer.Typer) -> None:
    app.command()(worker)
