"""The worker process's logging: no debug records are built when nobody wants them."""

from __future__ import annotations

import logging

import faust

from stream.settings import Settings
from stream.worker.run import make_worker


def test_at_warning_level_the_root_logger_is_not_lowered_to_debug() -> None:
    app = faust.App("test-run", broker="memory://", web_enabled=False)
    worker = make_worker(app, Settings(log_level="warning"))
    root = logging.Logger("test-root")  # a stand-in: the real root is shared with pytest
    root.addHandler(logging.NullHandler())
    root.setLevel(logging.WARNING)
    # When faust configures the root logger as it does at start
    worker.on_setup_root_logger(root, logging.WARNING)
    # Then the level stays, so aiokafka's and faust's per-send debug calls return at once
    assert root.level == logging.WARNING
    assert not root.isEnabledFor(logging.DEBUG)
