"""The edges every batch command shares (backtest, calibrate, replay, policy): the policy file it
loads, the output directory it writes, the report it leaves there, and the one line it prints for
an error.

A command's module (`stream/backtest/cli.py`, `stream/calibration/cli.py`, `stream/commands/`)
imports these from here, below all of them, so no command module reaches into another.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TextIO

import yaml

from stream.core.policy import DuplicateKeyError, Policy, PolicyError, load_policy
from stream.errors import BadInputError, EscalationError, UsageError
from stream.yaml_errors import yaml_problem


def load_named_policy(path: Path, role: str = "") -> Policy:
    """The policy at `path`; an invalid one is a `PolicyError` whose message names the file."""
    try:
        return load_policy(path)
    except PolicyError as exc:
        label = f"{role} policy" if role else "policy"
        raise PolicyError([("", f"{path}: invalid {label}: {policy_problem(exc)}")]) from exc


def policy_problem(exc: PolicyError) -> str:
    """What is wrong with a policy, on one line: a YAML syntax error as its line, column and
    problem (`stream.yaml_errors`), anything else as the policy's own message."""
    cause = exc.__cause__
    if isinstance(cause, yaml.YAMLError) and not isinstance(cause, DuplicateKeyError):
        return yaml_problem(cause)
    return str(exc)


def input_file(path: Path, what: str) -> Path:
    """`path` if it is a file to read; a missing path or a folder is a `UsageError` naming it."""
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist")
    return path


@contextmanager
def removed_on_failure(folder: Path) -> Iterator[None]:
    """Removes, if the block fails, the folders of `folder`'s path that did not exist before it:
    a failed run leaves no empty output folder it created behind.

    Only empty folders are removed (`rmdir`), deepest first, so a folder the user had, or one
    anything else has written into, stays.
    """
    new = [path for path in (folder, *folder.parents) if not path.exists()]
    try:
        yield
    except BaseException:
        for path in new:
            with suppress(OSError):  # not empty, already gone, or not ours to remove
                path.rmdir()
        raise


def input_with_lines(path: Path, what: str, empty: str) -> Path:
    """`input_file`, holding at least one line that is not blank: from an empty input a command
    would print an empty result that looks like a success. `empty` ends the error's sentence."""
    input_file(path, what)
    with path.open("rb") as lines:
        if not any(line.strip() for line in lines):
            raise BadInputError(f"{what} {path} {empty}")
    return path


def no_usable_event(events: Path) -> BadInputError:
    """The error of an event file whose every line was skipped or refused: the file's fault
    (exit 2), as an empty one is, and a report of nothing would be all n/a."""
    return BadInputError(
        f"event file {events} has no usable event (every line was skipped or refused)"
    )


def check_writable(out: Path) -> None:
    """Refuses an output directory that cannot be created or written, before any work is done.

    Writing is tried, not inferred from the mode bits: root passes every permission check yet
    cannot write a read-only file system.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"output directory {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output directory {out}: {exc.strerror}") from None
    refused = _write_refused(out)
    if refused:
        raise UsageError(f"output directory {out} is not writable: {refused}")


def check_output_file(path: Path, *, create_folder: bool = False) -> None:
    """Refuses an output file whose folder is missing (unless `create_folder`, which makes it)
    or not writable, or that is a folder, before any work is done."""
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder")
    if create_folder:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot write {path}: cannot create folder {path.parent}: {exc.strerror}"
            ) from None
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UsageError(f"cannot write {path}: the file is not writable")
        return
    refused = _write_refused(path.parent)
    if refused:
        raise UsageError(f"cannot write {path}: folder {path.parent} is not writable: {refused}")


def _write_refused(folder: Path) -> str:
    """Why a new file cannot be created in `folder` (the OS's words), or "" if it can."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".write-check-")
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(handle)
    os.unlink(probe)
    return ""


def fail(exc: EscalationError, stderr: TextIO) -> int:
    """Prints the error as one line (with the error's `hint`, if its class has one) and returns
    its exit code."""
    hint = getattr(exc, "hint", "")
    print(f"error: {exc}{hint}", file=stderr)
    return exc.exit_code


def write_report(out: Path, report: dict[str, Any], page: Callable[[dict[str, Any]], str]) -> None:
    """`report.json` and the page rendered from it alone, side by side in `out`."""
    (out / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "report.html").write_text(page(report), encoding="utf-8")


def report_footer(warnings: Iterable[str], out: Path) -> list[str]:
    """The last lines of a report command's summary: each warning, then where the report is."""
    return [f"warning: {w}" for w in warnings] + [
        f"report: {out / 'report.html'} and {out / 'report.json'}"
    ]
