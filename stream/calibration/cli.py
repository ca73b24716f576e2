"""What `escalation calibrate` does, as a plain function returning its exit code.

Writes `DIR/report.json`, `DIR/report.html` and, when a change is supported, `DIR/proposal.yaml`.
Exit codes (stream/errors.py): 0 reviewed; 1 nothing in the month could be judged (the report says
why) or the cluster failed (no broker, a missing topic); 2 the command or its input was wrong (a
bad month, an invalid policy, a malformed event line, an event file that is empty or whose every
line was skipped). A failed review leaves no folder it made.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from stream.backtest.sources import EventSource, JsonlSource, check_on_error, settings_source
from stream.calibration import proposal as prop
from stream.calibration.html import render
from stream.calibration.review import Period, ReviewError, period_read_range, run_review
from stream.command_io import (
    check_writable,
    fail,
    input_with_lines,
    load_named_policy,
    no_usable_event,
    removed_on_failure,
    report_footer,
    write_report,
)
from stream.errors import EXIT_FAILED, EXIT_OK, EscalationError
from stream.settings import Settings


def _pct(r: dict[str, Any]) -> str:
    if r.get("rate") is None:
        return "n/a"
    return f"{r['rate']:.1%} (95% {r['low']:.1%}-{r['high']:.1%}, n={r['n']:,})"


def summary_lines(report: dict[str, Any], out: Path) -> list[str]:
    overall = report["diagnostics"]["overall"]
    verdicts = overall["verdicts"]
    lines = [
        f"month {report['period']['month']}: {report['input']['conversations_in_period']:,} "
        f"conversations, {overall['with_outcome']:,} with an outcome, policy "
        f"{report['policy']['version']}",
        f"false escalations  {verdicts['false_escalation']:>6,}  "
        f"rate {_pct(overall['false_escalation_rate'])}",
        f"missed escalations {verdicts['missed_escalation']:>6,}  "
        f"rate {_pct(overall['missed_escalation_rate'])}",
        f"escalation rate    {_pct(overall['escalation_rate'])}",
    ]
    for p in report["proposals"]:
        if p["change"]:
            lines.append(f"propose {p['path']}: {p['current']} -> {p['proposed']}")
    proposal = report.get("proposal")
    if proposal:
        pred = proposal["predicted"]
        lines.append(
            f"predicted false + missed: {pred['current']['false_plus_missed']:,} -> "
            f"{pred['proposal']['false_plus_missed']:,}; proposal {out / 'proposal.yaml'}"
        )
        if pred.get("offer_credited"):
            accepted = pred["offer_acceptance"]
            lines.append(
                f"  assumed: {pred['offer_credited']:,} needed cases the proposal stops "
                f"escalating still get a transfer offer, accepted at the month's observed "
                f"{_pct(accepted)}"
            )
    else:
        lines.append("no change proposed")
    return lines + report_footer(report["warnings"], out)


def calibrate_command(
    month: str,
    policy: Path,
    out: Path,
    events: Path | None = None,
    from_topics: bool = False,
    *,
    settings: Settings | None = None,
    bootstrap: str | None = None,
    on_error: str = "stop",
    review_settings: prop.Settings | None = None,
    progress: bool | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the review; prints a summary, returns the exit code (module docstring)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        period = Period.month(month)
        mode = check_on_error(on_error)
        if (events is None) == (not from_topics):
            raise ReviewError("give either --events FILE or --from-topics, not both or neither")
        current = load_named_policy(policy)
        # A review that fails (a file refused, a topic missing) leaves no folder it made.
        with removed_on_failure(out):
            check_writable(out)
            source: EventSource
            if events is not None:
                input_with_lines(events, "event file", "has no events")  # as backtest
                source = JsonlSource(events, mode, warn=stderr)
            else:
                start, end = period_read_range(period, current)
                source = settings_source(
                    settings or Settings(),
                    start,
                    end,
                    bootstrap=bootstrap,
                    on_error=mode,
                    warn=stderr,
                )
            show = stderr.isatty() if progress is None else progress
            result = run_review(
                source,
                current,
                period,
                current_text=policy.read_text(encoding="utf-8"),
                current_path=str(policy),
                settings=review_settings,
                progress=show,
            )
            if events is not None and not source.events:
                # As backtest: every line skipped is the file's fault, and a review of nothing
                # would be all n/a.
                raise no_usable_event(events)
    except EscalationError as exc:
        return fail(exc, stderr)
    report = result.report
    report["input"].update(source.summary())
    write_report(out, report, render)
    stale = out / "proposal.yaml"
    if result.proposal_yaml is not None:
        stale.write_text(result.proposal_yaml, encoding="utf-8")
    else:
        stale.unlink(missing_ok=True)  # a proposal of an earlier run must not look current
    for line in summary_lines(report, out):
        print(line, file=stdout)
    judged = report["diagnostics"]["overall"]["with_outcome"]
    return EXIT_OK if judged else EXIT_FAILED
