"""What a suite run prints: a table with one line per case, the failures explained, JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from stream.policytest.model import Expect
from stream.policytest.run import CaseResult, explain, summary_line


def expected_text(expect: Expect) -> str:
    text: str = expect.action
    if expect.not_before is not None and expect.by_turn == expect.not_before:
        text += f" @ turn {expect.by_turn}"
    else:
        if expect.not_before is not None:
            text += f" ≥ turn {expect.not_before}"
        if expect.by_turn is not None:
            text += f" ≤ turn {expect.by_turn}"
    named = list(expect.rules) or list(expect.triggers)
    if named:
        text += f" [{', '.join(named)}]"
    return text


def decided_text(result: CaseResult) -> str:
    if result.error is not None:
        return "error"
    decisive = result.decisive
    if decisive is None:
        return "continue"
    rules = sorted({hit.rule for hit in decisive.decision.triggers})
    return f"{decisive.decision.action} @ turn {decisive.turn} [{', '.join(rules)}]"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(results: Sequence[CaseResult], *, width: int = 72) -> str:
    """One line per case, then each failure with the decisions that were actually made."""
    rows = [
        (
            r.status,
            _clip(f"{Path(r.loaded.file).name} › {r.loaded.name}", width),
            expected_text(r.loaded.case.expect),
            decided_text(r),
        )
        for r in results
    ]
    header = ("RESULT", "CASE", "EXPECTED", "DECIDED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        lines.append(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        )
    for result in results:
        if result.status == "PASS":
            continue
        loaded = result.loaded
        where = f"{loaded.file}:{loaded.line}" if loaded.line is not None else loaded.file
        lines += ["", f"{result.status} {loaded.name} ({where}, policy {result.policy_version})"]
        if loaded.case.description:
            lines.append(f"  case: {' '.join(loaded.case.description.split())}")
        if loaded.case.known_failure is not None:
            lines.append(f"  known failure: {' '.join(loaded.case.known_failure.split())}")
        if result.status == "XPASS":
            lines.append("  ✗ this known failure passes now: remove `known_failure` from the case")
            continue
        if result.error is not None:
            lines.append(f"  error: {result.error}")
        lines += [f"  ✗ {failure}" for failure in result.failures]
        lines += [f"  {line}" for line in explain(result)]
    lines += ["", summary_line(results)]
    return "\n".join(lines)


def junit_xml(results: Sequence[CaseResult], suite_name: str = "policy-tests") -> ET.ElementTree:
    """JUnit XML, one testsuite per case file, so CI shows failures by file and case name."""
    root = ET.Element("testsuites", name=suite_name)
    by_file: dict[str, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(result.loaded.file, []).append(result)
    total = failures = errors = 0
    for file, members in by_file.items():
        suite = ET.SubElement(root, "testsuite", name=file)
        suite_failures = suite_errors = 0
        for result in members:
            case = ET.SubElement(
                suite,
                "testcase",
                name=result.loaded.name,
                classname=Path(file).stem,
                file=file,
            )
            if result.loaded.line is not None:
                case.set("line", str(result.loaded.line))
            detail = "\n".join([*result.failures, *explain(result)])
            if result.status == "XFAIL":
                skipped = ET.SubElement(
                    case, "skipped", message=f"known failure: {result.loaded.case.known_failure}"
                )
                skipped.text = detail
            elif result.status == "XPASS":
                suite_failures += 1
                ET.SubElement(
                    case,
                    "failure",
                    message="this known failure passes now: remove known_failure from the case",
                )
            elif result.error is not None:
                suite_errors += 1
                node = ET.SubElement(case, "error", message=result.error)
                node.text = detail
            elif result.failures:
                suite_failures += 1
                node = ET.SubElement(case, "failure", message=result.failures[0])
                node.text = detail
        suite.set("tests", str(len(members)))
        suite.set("failures", str(suite_failures))
        suite.set("errors", str(suite_errors))
        total += len(members)
        failures += suite_failures
        errors += suite_errors
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(results: Sequence[CaseResult], path: Path) -> None:
    junit_xml(results).write(path, encoding="utf-8", xml_declaration=True)
