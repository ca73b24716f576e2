"""What `escalation backtest` and `escalation export` do, as plain functions returning exit codes.

Exit codes follow stream/errors.py: 0 done; 2 the command, the event file or a policy is wrong (bad
arguments, a malformed line under `--on-error stop`, an empty file or one whose every line was
skipped, an output that cannot be written, an invalid policy); 1 the run failed (the cluster did
not answer, a missing topic, a topic range with no event, a timeout).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TextIO

from stream.backtest.export import write_source
from stream.backtest.html import render
from stream.backtest.report import DEFAULT_MAX_CHANGED, build_report
from stream.backtest.run import RunResult, run_policies
from stream.backtest.sources import (
    EventSource,
    JsonlSource,
    KafkaSource,
    OnError,
    check_on_error,
    settings_source,
)
from stream.command_io import (
    check_output_file,
    check_writable,
    fail,
    input_with_lines,
    load_named_policy,
    no_usable_event,
    removed_on_failure,
    report_footer,
    write_report,
)
from stream.core.decision import Decision
from stream.core.policy import Policy, default_policy
from stream.errors import EXIT_OK, EscalationError, RunError, UsageError
from stream.settings import Settings


def parse_time(text: str) -> int:
    """Epoch milliseconds from `1717200000000` or ISO-8601 (`2024-06-01`, `2024-06-01T12:00Z`).

    An ISO time without a zone is UTC, so a command gives the same range on every machine.
    """
    value = text.strip()
    if value.lstrip("-").isdigit():
        millis = int(value)
        if millis < 0:
            raise UsageError(f"time {text!r} is before 1970")
        return millis
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"time {text!r} is neither epoch milliseconds nor ISO-8601 (e.g. 2024-06-01T00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _time_range(from_: str | None, to: str | None) -> tuple[int, int]:
    if from_ is None or to is None:
        raise UsageError("a time range needs both --from and --to")
    start, end = parse_time(from_), parse_time(to)
    if end <= start:
        raise UsageError(f"--to ({to}) must be after --from ({from_})")
    return start, end


def _kafka_source(
    from_: str | None,
    to: str | None,
    bootstrap: str | None,
    settings: Settings | None,
    topics: Mapping[str, str] | None,
    mode: OnError,
    warn: TextIO,
) -> KafkaSource:
    """The input topics over the `--from`/`--to` range (`sources.settings_source`)."""
    start, end = _time_range(from_, to)
    return settings_source(
        settings or Settings(),
        start,
        end,
        bootstrap=bootstrap,
        topics=topics,
        on_error=mode,
        warn=warn,
    )


def _empty_range(from_: str | None, to: str | None, what: str) -> RunError:
    """A topic range with no event: the run failed (exit 1), the call was right."""
    return RunError(
        f"the input topics hold no event appended between {from_} and {to}: nothing to {what}"
    )


class _DecisionFile:
    """decisions.jsonl written as decisions come, renamed into place only when the run succeeds."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self._fh: IO[str] = self.partial.open("w", encoding="utf-8")
        self._dumps = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), check_circular=False
        ).encode
        self.count = 0

    def __call__(self, decision: Decision) -> None:
        self._fh.write(self._dumps(decision.to_record()))
        self._fh.write("\n")
        self.count += 1

    def commit(self) -> None:
        self._fh.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self._fh.close()
        self.partial.unlink(missing_ok=True)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _summary_lines(report: Mapping[str, Any], out: Path) -> list[str]:
    cand, base = report["policies"]["candidate"], report["policies"]["baseline"]
    source = report["input"]
    co, bo = cand["outcomes"], base["outcomes"]
    # Wide enough for the longest policy version, with a gap, so two columns never touch.
    w = max(16, len(str(cand["policy_version"])) + 2, len(str(base["policy_version"])) + 2)
    rows = [
        ("", "candidate", "baseline"),
        ("policy version", cand["policy_version"], base["policy_version"]),
        ("escalation rate", _pct(cand["escalation_rate"]), _pct(base["escalation_rate"])),
        ("transfer offers", _pct(cand["offer_rate"]), _pct(base["offer_rate"])),
        ("false escalations", f"{co['false_escalations']:,}", f"{bo['false_escalations']:,}"),
        ("missed escalations", f"{co['missed_escalations']:,}", f"{bo['missed_escalations']:,}"),
    ]
    lines = [
        f"events: {source['events']:,} from {source.get('source', '?')} "
        f"({source.get('skipped_count', 0):,} skipped); "
        f"{report['performance']['events_per_second'] or 0:,} events/s",
        *(f"{label:<22}{c:>{w}}{b:>{w}}" for label, c, b in rows),
        f"changed conversations: {report['changed']['count']:,}",
    ]
    return lines + report_footer(report["warnings"], out)


def run_backtest(
    source: EventSource,
    candidate: Policy,
    baseline: Policy,
    out: Path,
    *,
    candidate_path: str | None = None,
    baseline_path: str | None = None,
    progress: bool = False,
    max_changed: int = DEFAULT_MAX_CHANGED,
    nothing_read: EscalationError | None = None,
) -> tuple[dict[str, RunResult], dict[str, Any]]:
    """Runs both policies over `source` and writes decisions, report.json and report.html to `out`.

    Exceptions from the source (InputError, SourceError) or from `step` (StepError) propagate;
    so does `nothing_read` when given and the source yields no event (a report of nothing is
    all n/a). Nothing is left behind that looks like a finished run, nor any folder it made.
    """
    # Each folder a failed run created goes, up to and including `out` if it is new.
    with removed_on_failure(out / "candidate"), removed_on_failure(out / "baseline"):
        out.mkdir(parents=True, exist_ok=True)
        results = _decide(source, candidate, baseline, out, progress, nothing_read)
    report = build_report(
        results["candidate"],
        results["baseline"],
        source=source.summary(),
        candidate_path=candidate_path,
        baseline_path=baseline_path,
        max_changed=max_changed,
    )
    write_report(out, report, render)
    return results, report


def _decide(
    source: EventSource,
    candidate: Policy,
    baseline: Policy,
    out: Path,
    progress: bool,
    nothing_read: EscalationError | None,
) -> dict[str, RunResult]:
    """Both policies' decisions into `out`'s candidate/ and baseline/, in place only on success."""
    files = {
        "candidate": _DecisionFile(out / "candidate" / "decisions.jsonl"),
        "baseline": _DecisionFile(out / "baseline" / "decisions.jsonl"),
    }
    try:
        # A file is sized before the run (a newline count); a Kafka range once it is planned.
        total = (
            (
                source.estimated_total()
                if isinstance(source, JsonlSource)
                else source.estimated_total
            )
            if progress
            else None
        )
        results = run_policies(
            source,
            {"candidate": candidate, "baseline": baseline},
            progress,
            total=total,
            keep=False,
            sinks=files,
        )
        if nothing_read is not None and not results["candidate"].events:
            raise nothing_read
    except BaseException:
        for file in files.values():
            file.discard()
        raise
    for file in files.values():
        file.commit()
    return results


def backtest_command(
    policy: Path,
    baseline: Path | None,
    events: Path | None,
    from_: str | None,
    to: str | None,
    out: Path,
    on_error: str = "stop",
    bootstrap: str | None = None,
    *,
    settings: Settings | None = None,
    topics: Mapping[str, str] | None = None,
    progress: bool | None = None,
    max_changed: int = DEFAULT_MAX_CHANGED,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """`escalation backtest`: candidate vs baseline over an event file or a time range of topics.

    `baseline` defaults to the shipped policy. `from_`/`to` take ISO-8601 or epoch ms; the topics
    are the input topics (with the settings' prefix) unless `topics` maps event type to topic name.
    `progress` defaults to whether stderr is a terminal.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        mode = check_on_error(on_error)
        if (events is None) == (from_ is None and to is None):
            raise UsageError("give either --events FILE or --from and --to, not both or neither")
        if max_changed < 0:
            raise UsageError("max_changed must not be negative")
        candidate = load_named_policy(policy, "candidate")
        base = load_named_policy(baseline, "baseline") if baseline is not None else default_policy()
        # A run that fails (an event file refused, a topic missing) leaves no folder it made.
        with removed_on_failure(out):
            check_writable(out)
            source: EventSource
            if events is not None:
                input_with_lines(events, "event file", "has no events")  # a report of n/a
                bounds = (settings or Settings()).time_bounds()
                now_ms = int(time.time() * 1000)
                source = JsonlSource(events, mode, warn=stderr, bounds=bounds, now_ms=now_ms)
                nothing_read: EscalationError = no_usable_event(events)
            else:
                source = _kafka_source(from_, to, bootstrap, settings, topics, mode, stderr)
                nothing_read = _empty_range(from_, to, "backtest")
            show = stderr.isatty() if progress is None else progress
            _, report = run_backtest(
                source,
                candidate,
                base,
                out,
                candidate_path=str(policy),
                baseline_path=str(baseline) if baseline is not None else "(shipped default)",
                progress=show,
                max_changed=max_changed,
                nothing_read=nothing_read,
            )
    except EscalationError as exc:
        return fail(exc, stderr)
    for line in _summary_lines(report, out):
        print(line, file=stdout)
    return EXIT_OK


def export_command(
    from_: str,
    to: str,
    out: Path,
    bootstrap: str | None = None,
    on_error: str = "stop",
    *,
    settings: Settings | None = None,
    topics: Mapping[str, str] | None = None,
    progress: bool | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """`escalation export`: a time range of the input topics into a JSON Lines event file."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        mode = check_on_error(on_error)
        with removed_on_failure(out.parent):
            check_output_file(out, create_folder=True)
            source = _kafka_source(from_, to, bootstrap, settings, topics, mode, stderr)
            show = stderr.isatty() if progress is None else progress
            nothing = _empty_range(from_, to, "export")
            written = write_source(source, out, progress=show, nothing_read=nothing)
    except EscalationError as exc:
        return fail(exc, stderr)
    skipped = f", {source.skipped_count:,} skipped" if source.skipped_count else ""
    if source.refused_count:
        skipped += f", {source.refused_count:,} refused for their event time"
    print(f"exported {written:,} events to {out}{skipped}", file=stdout)
    return EXIT_OK
