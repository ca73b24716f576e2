"""`escalation lag`: print, watch, gate a deploy on, or export the worker group's consumer lag."""

from __future__ import annotations

from typing import Annotated

import typer

from stream.commands import settings_of
from stream.errors import EXIT_FAILED, UsageError


def lag(
    ctx: typer.Context,
    group: Annotated[
        str | None, typer.Option(help="Consumer group; the worker's app id if omitted.")
    ] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option(help="Topic to measure (repeatable); every input topic if omitted."),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            help="Refresh a live table until interrupted; one plain line per refresh when the "
            "output is not a terminal."
        ),
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.1)] = 2.0,
    count: Annotated[
        int | None, typer.Option(help="Stop after this many refreshes (--watch, --serve).", min=1)
    ] = None,
    max_lag: Annotated[
        int | None,
        typer.Option(help="Exit 1 when the total lag is above N (gates a deploy).", min=0),
    ] = None,
    serve: Annotated[
        int | None,
        typer.Option(
            help="Export the lag as Prometheus metrics on this port until stopped.",
            min=1,
            max=65535,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address --serve listens on.")] = "127.0.0.1",
) -> None:
    """Committed offset, end offset, lag and time lag per partition of the input topics.

    Exit 1 when the total lag is above --max-lag, a topic does not exist, no broker answers or
    --serve's port is taken; 2 when an option is wrong.
    """
    from rich.console import Console
    from rich.live import Live

    from stream import logs
    from stream.lag import LagProbe, LagReport, render, summary_line, watch_reports
    from stream.lag import serve as serve_lag
    from stream.topics import INPUT_TOPICS

    if count is not None and not (watch or serve is not None):
        raise UsageError("--count bounds the refreshes of --watch or --serve; give one of them")
    settings = settings_of(ctx)
    logs.configure(settings.log_level)
    topics = topic or [settings.topic(name) for name in INPUT_TOPICS]
    console = Console()
    probe = LagProbe(
        settings.confluent_config(),
        group or settings.app_id,
        topics,
        timeout=settings.broker_wait_seconds,
    )
    report: LagReport | None = None
    try:
        if serve is not None:
            serve_lag(probe, host, serve, interval, count)
            return
        if watch and not console.is_terminal:
            # Into a file or a pipe a live table shows nothing: one plain line per refresh.
            try:
                for report in watch_reports(probe, interval, count):
                    typer.echo(summary_line(report, settings.topic_prefix))
            except KeyboardInterrupt:
                pass
        elif watch:
            with Live(console=console, auto_refresh=False) as live:
                try:
                    for report in watch_reports(probe, interval, count):
                        live.update(render(report, settings.topic_prefix), refresh=True)
                except KeyboardInterrupt:
                    pass
        else:
            report = probe.measure()
            console.print(render(report, settings.topic_prefix))
    finally:
        probe.close()
    if max_lag is not None and report is not None and report.total > max_lag:
        typer.echo(f"escalation lag: total lag {report.total} is above {max_lag}", err=True)
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(lag)
