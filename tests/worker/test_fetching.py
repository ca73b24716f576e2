"""The worker's consumer asks the broker for a few records per fetch, as its settings say."""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka
import pytest

from stream.settings import Settings
from stream.worker.app import build_app
from stream.worker.consumer import AtLeastOnceApp
from stream.worker.fetching import BatchedFetchThread, configure_fetch


def _aiokafka_consumer(app: Any) -> Any:
    """The aiokafka consumer the app's consumer thread would start (not started: no broker)."""

    async def build() -> Any:
        thread = app.consumer._thread
        assert isinstance(thread, BatchedFetchThread)
        return thread._create_worker_consumer(app.transport)

    return asyncio.run(build())


def test_the_worker_consumer_fetches_with_the_settings_minimum_and_wait() -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:1", fetch_min_bytes=4096, fetch_max_wait_ms=7)
    consumer = _aiokafka_consumer(build_app(settings))
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (4096, 7)


def test_without_settings_faust_defaults_stay() -> None:
    app = AtLeastOnceApp("test-fetching", broker="kafka://127.0.0.1:1", web_enabled=False)
    consumer = _aiokafka_consumer(app)
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (1, 1500)


def test_the_values_land_where_aiokafka_keeps_its_constructors() -> None:
    """Guards the private names: a consumer given them by keyword holds the same values."""

    async def both() -> tuple[Any, Any]:
        direct = aiokafka.AIOKafkaConsumer(fetch_min_bytes=2048, fetch_max_wait_ms=9)
        configured = aiokafka.AIOKafkaConsumer()
        configure_fetch(configured, 2048, 9)
        return direct, configured

    direct, configured = asyncio.run(both())
    for name in ("_fetch_min_bytes", "_fetch_max_wait_ms"):
        assert getattr(configured, name) == getattr(direct, name)


def test_a_consumer_without_those_names_is_refused_not_silently_left() -> None:
    with pytest.raises(RuntimeError, match="_fetch_min_bytes"):
        configure_fetch(object(), 2048, None)
