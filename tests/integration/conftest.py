"""Setup the integration tests share: each module's own topics on the real broker, and a worker.

A module gets fresh topics (`isolated`) and, if it asks, one worker on them (`worker`, or
`consuming_worker` once it consumes; either gives its log path). A module whose tests each need
topics of their own rebinds `isolated` in one line: `isolated = pytest.fixture(isolated_topics)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.kafka_helpers import (
    Isolated,
    isolated_topics,
    running_worker,
    wait_until_consuming,
)


@pytest.fixture(scope="module")
def isolated() -> Iterator[Isolated]:
    yield from isolated_topics()


@pytest.fixture(scope="module")
def worker(isolated: Isolated, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A worker on the module's topics, starting; yields the path of its log.

    It is not awaited: events produced meanwhile are a backlog it reads from the beginning.
    """
    data = tmp_path_factory.mktemp("worker")
    with running_worker(isolated, data / "state", data / "worker.log"):
        yield data / "worker.log"


@pytest.fixture(scope="module")
def consuming_worker(isolated: Isolated, worker: Path) -> Path:
    """The module's worker once it consumes: what a test produces next arrives live."""
    wait_until_consuming(isolated)
    return worker
