"""The decision core imports no Kafka, Faust or network client: it must run the same everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "stream" / "core"
FORBIDDEN = {
    "faust",
    "aiokafka",
    "confluent_kafka",
    "kafka",
    "mode",
    "socket",
    "requests",
    "httpx",
    "urllib3",
    "asyncio",
}
MODULES = sorted(CORE.rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


def test_core_has_modules() -> None:
    names = {p.relative_to(CORE).as_posix() for p in MODULES}
    assert {"step.py", "policy.py", "state.py", "decision.py", "triggers/boundary.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_no_kafka_or_network_import(path: Path) -> None:
    assert imported_roots(path) & FORBIDDEN == set()


def test_no_environment_or_clock_in_step_path() -> None:
    # Same state, event and policy must give the same decisions: no clock, no randomness, no env.
    for path in MODULES:
        if path.name == "markers.py":
            continue
        roots = imported_roots(path)
        assert not roots & {"time", "datetime", "random", "os"}, path.name
