"""Starts a Faust worker for the app built from the settings."""

from __future__ import annotations

import sys

import faust
import structlog
from confluent_kafka import KafkaException

from stream import logs
from stream.security import SecurityConfigError
from stream.settings import Settings
from stream.worker import internal_topics
from stream.worker.app import build_app
from stream.worker.topic_check import TopicsNotReady, check_worker_topics

log = structlog.get_logger(__name__)


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings()
    logs.configure(settings.log_level)
    try:
        check_worker_topics(settings, settings.confluent_config())
    except (TopicsNotReady, KafkaException, SecurityConfigError) as exc:
        message = str(exc)
        if isinstance(exc, KafkaException):
            message = f"cannot check the topics at {settings.bootstrap_servers}: {exc}"
        log.error("worker_refused_to_start", reason=message)
        print(f"escalation worker: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings)
    internal_topics.prepare(app, settings.confluent_config())
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
