"""The worker's topics and tables, declared one way by every agent.

The customer agent, the idle sweep's floors and the calibration agent each declare what they read,
write and keep. A topic carries the records' own bytes (the serde is the project's, not Faust's),
and a kept table is keyed by a string, co-partitioned with the input topics and stored in RocksDB
through rocksdict; declaring either twice by hand let one copy drift from the other.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TableT


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    """Records pass through Faust as bytes: decoding is stream.serde's, with its dead letters."""
    return app.topic(
        *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def kept_table(
    app: faust.App, name: str, *, partitions: int, help: str, value_type: Any = None
) -> TableT[str, Any]:
    """A table whose partitions move with the input partitions of the same number."""
    return app.Table(
        name,
        default=None,
        partitions=partitions,
        key_type=str,
        value_type=value_type,
        options={"driver": "rocksdict"},
        help=help,
    )
