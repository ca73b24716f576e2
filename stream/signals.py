"""`escalation signals`: the text signal of each JSON Lines record.

Per record: the learned turn signal (`dissatisfaction`, 0..1, what the sentiment trigger compares
with the policy's `turn_threshold`), and the readable evidence beside it: the markers found, the
lexicon score and the rule verdict of `stream.core.markers`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from stream.command_io import input_file
from stream.core.markers import TextSignal, analyze
from stream.core.turn_model import TurnModel, load_shipped
from stream.errors import BadInputError

__all__ = ["SignalsInputError", "run_signals", "signal_record"]


class SignalsInputError(BadInputError):
    """A line of the input is not a JSON object with an id and a text."""

    def __init__(self, path: Path, line_number: int, reason: str) -> None:
        super().__init__(f"{path}:{line_number}: {reason}")
        self.path = path
        self.line_number = line_number
        self.reason = reason


def signal_record(
    record_id: str | int, signal: TextSignal, dissatisfaction: float
) -> dict[str, Any]:
    return {
        "id": record_id,
        "dissatisfaction": round(dissatisfaction, 4),
        "negative": signal.negative,
        "score": round(signal.score, 4),
        "human_request": signal.human_request,
        "markers": [{"kind": m.kind, "text": m.text} for m in signal.markers],
    }


def _parse(path: Path, line_number: int, line: str) -> tuple[str | int, str]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SignalsInputError(path, line_number, f"not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise SignalsInputError(path, line_number, "expected a JSON object {id, text}")
    if "id" not in value:
        raise SignalsInputError(path, line_number, 'missing "id"')
    record_id = value["id"]
    # bool is an int subclass; an id of true/false is a producer bug, not an id.
    if isinstance(record_id, bool) or not isinstance(record_id, str | int):
        raise SignalsInputError(path, line_number, '"id" must be a string or an integer')
    text = value.get("text")
    if not isinstance(text, str):
        raise SignalsInputError(path, line_number, '"text" must be a string')
    return record_id, text


def run_signals(input_path: Path, output: TextIO, model: TurnModel | None = None) -> int:
    """Write one JSON line per input line; return how many were written.

    Blank lines are skipped. Output is written as the input is read, so when a malformed line
    raises SignalsInputError the lines before it have already been written.
    """
    input_file(input_path, "input file")
    model = model or load_shipped()
    written = 0
    # Read as bytes and decode per line, so a line that is not UTF-8 is named by its number.
    with input_path.open("rb") as lines:
        for line_number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                reason = f"not UTF-8 text (byte {exc.start}: {exc.reason})"
                raise SignalsInputError(input_path, line_number, reason) from None
            if not line.strip():
                continue
            record_id, text = _parse(input_path, line_number, line)
            # ASCII escapes keep the output valid in whatever encoding the stream uses.
            signal = analyze(text)
            output.write(json.dumps(signal_record(record_id, signal, model.score(text, signal))))
            output.write("\n")
            written += 1
    return written
