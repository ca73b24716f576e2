"""Starts a Faust worker for the app built from the settings."""

from __future__ import annotations

import faust

from stream import logs
from stream.settings import Settings
from stream.worker import internal_topics
from stream.worker.app import build_app


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    logs.configure(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings)
    internal_topics.prepare(app, settings.confluent_config())
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
