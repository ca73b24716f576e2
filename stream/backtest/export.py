"""Export a time range of the input topics to a JSON Lines event file: a frozen set of edge cases.

The file is the format the backtest reads (`{"type": ..., ...fields of the Avro record}`, one event
a line) in the merged event-time order of `sources.KafkaSource`, so backtesting the file gives the
decisions that backtesting the same range of the topics gives. Records that cannot be decoded or are
not valid events follow `on_error` exactly as in a backtest. The file appears only when complete.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from stream.backtest.sources import (
    DEFAULT_TIMEOUT_S,
    KafkaSource,
    OnError,
)
from stream.errors import EscalationError
from stream.serde import RegistryConfig


def write_source(
    source: KafkaSource,
    out: Path,
    *,
    progress: bool = False,
    nothing_read: EscalationError | None = None,
) -> int:
    """Writes every event of `source` to `out` (atomically: a failed export leaves no file, and a
    file of that name from before stays as it was). `nothing_read`, when given, is raised when
    the source yields no event: an empty file would look like a frozen test set."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    written = 0
    bar = tqdm(unit="ev", unit_scale=True, disable=not progress, file=sys.stderr, mininterval=0.5)
    try:
        with partial.open("w", encoding="utf-8") as fh:
            for kind, record, _ in source.items():
                if written == 0 and source.planned is not None:
                    bar.total = source.planned
                # `type` first, so a person reading the file sees what each line is.
                fh.write(
                    json.dumps({"type": kind, **record}, ensure_ascii=False, separators=(",", ":"))
                )
                fh.write("\n")
                written += 1
                if written % 1024 == 0:
                    bar.update(1024)
        bar.update(written % 1024)
        if nothing_read is not None and written == 0:
            raise nothing_read
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    return written


def export(
    bootstrap: str,
    start_ms: int,
    end_ms: int,
    out: Path,
    topics: Mapping[str, str] | None = None,
    *,
    client_config: Mapping[str, Any] | None = None,
    on_error: OnError = "stop",
    registry: RegistryConfig | None = None,
    progress: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    warn: TextIO | None = sys.stderr,
) -> int:
    """Exports events with record timestamps in [start_ms, end_ms) to `out`; returns how many.

    `topics` maps event type to topic name (default: the input topics of `topics/`); only those
    types are exported. `client_config` (librdkafka settings, e.g. security) wins over `bootstrap`.
    """
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, **(client_config or {})}
    source = KafkaSource(
        config,
        start_ms,
        end_ms,
        topics=topics,
        on_error=on_error,
        registry=registry,
        timeout_s=timeout_s,
        warn=warn,
    )
    return write_source(source, out, progress=progress)
