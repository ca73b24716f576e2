"""Starts a Faust worker for the app built from the settings."""

from __future__ import annotations

import sys

import faust
import structlog
from confluent_kafka import KafkaException

from stream import logs
from stream.core.turn_model import TurnModel
from stream.errors import EXIT_FAILED, EscalationError
from stream.settings import Settings
from stream.worker import internal_topics, log_limits
from stream.worker.app import build_app
from stream.worker.topic_check import check_worker_topics

log = structlog.get_logger(__name__)


def make_worker(app: faust.App, settings: Settings) -> faust.Worker:
    """A Faust worker without its terminal spinner.

    At a log level of warning or above, faust's worker installs a spinner handler and sets the
    root logger to DEBUG so that every record spins it; every `log.debug` inside aiokafka's and
    faust's send path then builds a record nobody reads (about 4% of the worker's time). Without
    the spinner the root logger keeps the configured level.
    """
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.spinner = None
    return worker


def main(settings: Settings | None = None, *, model: TurnModel | None = None) -> None:
    """Run one worker; `model` replaces the shipped turn model (a test injects a failing one)."""
    settings = settings or Settings()
    logs.configure(settings.log_level)
    log_limits.install()
    # Refused here, in one sentence, rather than by Faust after it has started: incomplete
    # security settings, an unreachable cluster, or topics that differ from topics/.
    try:
        check_worker_topics(settings, settings.confluent_config())
    except EscalationError as exc:
        log.error("worker_refused_to_start", reason=str(exc))
        print(f"escalation worker: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KafkaException as exc:
        log.error("worker_refused_to_start", reason=str(exc))
        print(
            f"escalation worker: cannot check the topics at {settings.bootstrap_servers}: {exc}",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_FAILED) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings, model=model)
    internal_topics.prepare(app, settings.confluent_config())
    make_worker(app, settings).execute_from_commandline()
