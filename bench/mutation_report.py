"""Mutation score of the decision rules from a finished `mutmut run`; every survivor accounted for.

Run by `make mutation` inside the mutation environment (it imports mutmut, pinned in the
`mutation` dependency group, to read its results). A survivor is a change to a decision rule that
no core unit test noticed. Each one is either fixed by a test, or listed in
`bench/mutation_survivors.yaml` as `equivalent` (the change cannot alter behaviour) or `prose`
(it changes only the wording a person reads, e.g. a reason sentence), with a one-line reason.
The score counts only mutants that change behaviour: killed / (all - equivalent - prose).

Writes bench/results/mutation.json, with the mutmut command(s) given as --command, and prints the
score per module; exits 1 below --min-score.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shlex
import subprocess
import sys
import tokenize
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = REPO / "bench" / "mutation_survivors.yaml"
RESULT = REPO / "bench" / "results" / "mutation.json"
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    """The removed and added source lines of a mutant's diff, stripped, headers left out."""
    removed = [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    added = [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    return removed, added


def _tokens(line: str) -> list[tuple[int, str]] | None:
    skip = (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)
    try:
        return [
            (tok.type, tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(line.strip()).readline)
            if tok.type not in skip
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


_LITERAL = re.compile(r"^([a-zA-Z]*)('''|\"\"\"|'|\")(.*)\2$", re.DOTALL)


def _is_sentence_edit(before: str, after: str) -> bool:
    """mutmut's string mutants: XX-wrapped or case-changed text, of a literal that is a sentence."""
    old, new = _LITERAL.match(before), _LITERAL.match(after)
    if old is None or new is None or old.group(1, 2) != new.group(1, 2):
        return False
    body, mutated = old.group(3), new.group(3)
    if not re.search(r"\s", body):
        return False  # an identifier-like literal (a key, an action name) is behaviour
    return mutated in (f"XX{body}XX", body.upper(), body.lower())


def is_prose_only(removed: list[str], added: list[str]) -> bool:
    """True when the mutant changes only the wording of sentences a person reads.

    Reasons, evidence details and error messages are read by people; their facts (values, ids,
    thresholds) are pinned by tests, their wording is not. A changed literal without whitespace
    (a key or an action name) always counts as behaviour.
    """
    if len(removed) != 1 or len(added) != 1:
        return False
    before, after = _tokens(removed[0]), _tokens(added[0])
    if before is None or after is None or len(before) != len(after):
        return False
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    return bool(changed) and all(
        b[0] == a[0] == tokenize.STRING and _is_sentence_edit(b[1], a[1]) for b, a in changed
    )


def function_of(name: str) -> str:
    """`stream.core.combine.x_combine__mutmut_7` -> `combine`; methods keep their class."""
    tail = name.rsplit(".", 1)[-1]
    tail = re.sub(r"__mutmut_\d+$", "", tail)
    tail = tail.removeprefix("x_")
    return tail.replace("ǁ", ".").strip(".")


def load_annotations() -> list[dict[str, str]]:
    if not ANNOTATIONS.exists():
        return []
    raw = yaml.safe_load(ANNOTATIONS.read_text(encoding="utf-8")) or []
    for item in raw:
        missing = {"module", "function", "mutated", "kind", "reason"} - set(item)
        if missing or item["kind"] not in ("equivalent", "prose"):
            raise SystemExit(f"{ANNOTATIONS}: bad entry {item!r} (missing {sorted(missing)})")
    return list(raw)


def annotation_for(
    annotations: list[dict[str, str]], module: str, function: str, added: list[str]
) -> dict[str, str] | None:
    """Matched by module, function and mutated line, so renumbered mutants keep their note."""
    text = "\n".join(added)
    for item in annotations:
        if item["module"] == module and item["function"] == function and item["mutated"] == text:
            return item
    return None


def _commit() -> str | None:
    """The commit the mutants were made from, so the figures can be traced to the code."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-score", type=float, default=None)
    parser.add_argument("--commit", default=None, help="the commit mutated (default: HEAD now)")
    parser.add_argument(
        "--command",
        action="append",
        required=True,
        help="the mutmut command that produced the results, as run (repeat it for a result of "
        "several runs, in order); `make mutation` passes its own",
    )
    args = parser.parse_args()

    annotations = load_annotations()
    used: set[int] = set()
    modules: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[dict[str, Any]] = []
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        module = str(path)
        for name, code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[code]
            counts = modules[module]
            counts["total"] += 1
            if status in DETECTED:
                counts["killed"] += 1
                continue
            if status == "not checked":  # an interrupted run: neither killed nor survived
                counts["not_checked"] += 1
                continue
            diff = get_diff_for_mutant(name, path=path)
            removed, added = changed_lines(diff)
            function = function_of(name)
            note = annotation_for(annotations, module, function, added)
            if note is None and is_prose_only(removed, added):
                note = {"kind": "prose", "reason": "changes only the wording of a sentence"}
            entry: dict[str, Any] = {
                "mutant": name,
                "module": module,
                "function": function,
                "status": status,
                "original": "\n".join(removed),
                "mutated": "\n".join(added),
            }
            if note is not None:
                used.add(id(note))
                counts[note["kind"]] += 1
                entry["kind"] = note["kind"]
                entry["reason"] = note["reason"]
            else:
                counts["unexplained"] += 1
                entry["kind"] = "unexplained"
                entry["reason"] = "no test catches this change"
            survivors.append(entry)

    def score(counts: Counter[str]) -> float | None:
        behavioural = (
            counts["total"] - counts["equivalent"] - counts["prose"] - counts["not_checked"]
        )
        return round(counts["killed"] / behavioural, 4) if behavioural else None

    total: Counter[str] = Counter()
    for counts in modules.values():
        total.update(counts)
    report = {
        "tool": "mutmut 3.8.1",
        # The runs' own words: a result of targeted or split runs is not what `make mutation` does.
        "command": " ; then ".join(args.command),
        "report_command": shlex.join(["python", "bench/mutation_report.py", *sys.argv[1:]]),
        "commit": args.commit or _commit(),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "score_counts": (
            "killed / (total - equivalent - prose - not_checked); timeouts count as killed"
        ),
        "score": score(total),
        "totals": dict(total),
        "modules": {
            module: {"score": score(counts), **dict(counts)}
            for module, counts in sorted(modules.items())
        },
        "survivors": survivors,
        "stale_annotations": [item for item in annotations if id(item) not in used],
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    width = max(len(m) for m in modules) if modules else 10
    print(f"{'module':<{width}}  total  killed  equiv  prose  unexplained  score")
    for module, counts in sorted(modules.items()):
        s = score(counts)
        print(
            f"{module:<{width}}  {counts['total']:>5}  {counts['killed']:>6}  "
            f"{counts['equivalent']:>5}  {counts['prose']:>5}  {counts['unexplained']:>11}  "
            f"{'n/a' if s is None else f'{s:.1%}'}"
        )
    overall = score(total)
    checked = total["total"] - total["equivalent"] - total["prose"] - total["not_checked"]
    print(
        f"mutation score {'n/a' if overall is None else f'{overall:.1%}'} "
        f"({total['killed']} killed of {checked} "
        f"behavioural mutants; {total['equivalent']} equivalent, {total['prose']} prose-only, "
        f"{total['unexplained']} unexplained survivors) -> {RESULT.relative_to(REPO)}"
    )
    if total["not_checked"]:
        print(f"{total['not_checked']} mutants were not checked: the run did not finish")
    if args.min_score is not None and (overall is None or overall < args.min_score):
        print(f"below the required {args.min_score:.0%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
