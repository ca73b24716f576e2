"""`escalation signals`: the text signal of each line of a JSON Lines file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def signals(
    input: Annotated[Path, typer.Option("--input", help="JSON Lines of {id, text}.")],
    output: Annotated[Path | None, typer.Option(help="Where to write; stdout if omitted.")] = None,
) -> None:
    """Negative/frustration markers and a verdict for each line of text.

    Exit 2 when the input is missing, empty or has a malformed line (named by its number), or the
    output cannot be written.
    """
    from stream.command_io import check_output_file, input_with_lines
    from stream.signals import run_signals

    input_with_lines(input, "input file", "has no lines to score")
    if output is None:
        run_signals(input, sys.stdout)
        return
    check_output_file(output)
    with output.open("w", encoding="utf-8") as out:
        run_signals(input, out)


def register(app: typer.Typer) -> None:
    app.command()(signals)
