"""Faults injected the way a bug would strike: a function of the decision path raises.

The fail-safe tests (core, backtest, worker) break one function and check that the decision
escalates and names the failure; one helper breaks it, so they all inject the same fault and read
the same message back.
"""

from __future__ import annotations

from typing import Any

import pytest


class InjectedFault(RuntimeError):
    """The injected fault; its name in a decision's reason shows the fail-safe path was taken."""


def inject_fault(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str = "check") -> list[int]:
    """Make `owner.name` raise `InjectedFault("injected fault in NAME")`; the returned list gets
    one item per call, so a test can tell the broken function was reached."""
    calls: list[int] = []

    def broken(*_a: Any, **_kw: Any) -> Any:
        calls.append(1)
        raise InjectedFault(f"injected fault in {name}")

    monkeypatch.setattr(owner, name, broken)
    return calls
