"""Read case files and folders into validated cases, or say exactly what is wrong and where.

Every problem names the file (with the line), the case (by name and position) and the field, and
all problems of all files are reported at once, so a suite is fixed in one pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from stream.core.policy import UniqueKeyLoader
from stream.errors import BadInputError
from stream.policytest.model import Case, CaseFile, FieldProblem, field_names

CASE_SUFFIXES: Final[tuple[str, ...]] = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a case file."""

    file: str
    problem: str
    case: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        parts = [where]
        if self.case is not None:
            parts.append(self.case)
        if self.field:
            parts.append(self.field)
        return ": ".join([*parts, self.problem])


class CaseFormatError(BadInputError):
    """Case files that cannot be run; `problems` lists each with file, case and field."""

    def __init__(self, problems: Sequence[Problem], headline: str | None = None) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the policy test cases:"
        lines = [f"  {p}" for p in self.problems]
        if headline is not None:
            lines.append(headline)
        super().__init__("\n".join([head, *lines]))


@dataclass(frozen=True, slots=True)
class LoadedCase:
    """A validated case with where it came from."""

    file: str
    index: int
    line: int | None
    case: Case

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def id(self) -> str:
        return f"{self.file}::{self.case.name}"


def case_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """The case files named or found (recursively, sorted) under folders."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in CASE_SUFFIXES and p.is_file())
            if not found:
                problems.append(Problem(str(path), "the folder holds no case files (*.yaml)"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), "no such file or folder"))
    return files, problems


def load_cases(paths: Iterable[Path]) -> list[LoadedCase]:
    """Every case of the given files and folders; raises CaseFormatError listing all problems."""
    files, problems = case_files(paths)
    cases: list[LoadedCase] = []
    for path in files:
        loaded, found = load_file(path)
        cases.extend(loaded)
        problems.extend(found)
    if problems:
        raise CaseFormatError(problems)
    return cases


def load_file(path: Path) -> tuple[list[LoadedCase], list[Problem]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(name, f"cannot read the file: {exc}")]
    return parse_cases(text, name)


def parse_cases(text: str, name: str) -> tuple[list[LoadedCase], list[Problem]]:
    """Cases from YAML text; `name` is how problems refer to the file."""
    try:
        root = yaml.compose(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        raw = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return [], [Problem(name, f"not valid YAML: {exc.problem or exc}", line=line)]
    except yaml.YAMLError as exc:
        return [], [Problem(name, f"not valid YAML: {exc}")]
    if raw is None:
        return [], [Problem(name, "the file is empty: it holds no cases", field="cases")]
    if not isinstance(raw, dict):
        return [], [Problem(name, "expected a mapping with a `cases:` list", line=1)]
    try:
        parsed = CaseFile.model_validate(raw)
    except ValidationError as exc:
        return [], _problems(exc, raw, root, name)
    problems: list[Problem] = []
    cases: list[LoadedCase] = []
    seen: set[str] = set()
    for index, case in enumerate(parsed.cases):
        line = _line(root, ("cases", index))
        if case.name in seen:
            problems.append(
                Problem(name, "another case has this name", _case_label(raw, index), "name", line)
            )
        seen.add(case.name)
        cases.append(LoadedCase(name, index, line, case))
    return cases, problems


def _case_label(raw: Any, index: int) -> str:
    cases = raw.get("cases") if isinstance(raw, dict) else None
    case_name = None
    if isinstance(cases, list) and index < len(cases) and isinstance(cases[index], dict):
        case_name = cases[index].get("name")
    if isinstance(case_name, str) and case_name:
        return f"case {case_name!r} (cases[{index}])"
    return f"case cases[{index}]"


def _field_path(loc: Sequence[int | str]) -> str:
    """`turns[1] (turn 2).confidence`: the YAML position, and the turn number cases use."""
    path = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            if previous == "turns":
                path += f" (turn {part + 1})"
        else:
            path = f"{path}.{part}" if path else part
        previous = part
    return path


def _line(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The line of the deepest node of `loc` present in the document."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


_KNOWN = field_names()


def _problems(exc: ValidationError, raw: Any, root: yaml.Node | None, name: str) -> list[Problem]:
    problems: list[Problem] = []
    errors = exc.errors()
    failed_locs = [tuple(error["loc"]) for error in errors]
    for error in errors:
        loc: list[int | str] = list(error["loc"])
        if error["type"] == "too_short" and any(
            len(other) > len(loc) and other[: len(loc)] == tuple(loc) for other in failed_locs
        ):
            continue  # items that failed are dropped before the length check: not a problem
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            loc.extend(cause.field.split("."))
            message = cause.problem
        elif error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            key = str(loc[-1])
            close = difflib.get_close_matches(key, sorted(_KNOWN), n=1)
            message = "unknown field" + (f" (typo? did you mean {close[0]!r})" if close else "")
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "too_short" and loc and loc[-1] in ("cases", "turns"):
            message = f"no {loc[-1]}: at least one is needed"
        elif error["type"] == "literal_error":
            expected = (error.get("ctx") or {}).get("expected", "")
            message = f"{error['input']!r} is not one of {expected}"
        else:
            message = str(error["msg"])
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
        # pydantic puts the tag of a Before-validated union member in the path; it is noise here.
        loc = [part for part in loc if part not in ("function-before[_turn_expect(), nullable]",)]
        case: str | None = None
        field_loc: list[int | str] = loc
        if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
            case = _case_label(raw, loc[1])
            field_loc = loc[2:]
        problems.append(
            Problem(
                file=name,
                problem=message,
                case=case,
                field=_field_path(field_loc) or None,
                line=_line(root, loc),
            )
        )
    return problems
