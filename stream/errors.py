"""The one root of the project's errors, and the exit code each kind of failure gets.

Every command follows one rule, so a script calling `escalation` can tell its own mistakes from the
system's: exit 2 when the command, an input file or a policy is wrong (fix the call and retry),
exit 1 when a correct command failed to run or the cluster did not answer (retry later). A topic
that does not exist is 1 in every command, as topics that differ from `topics/` are for `topics
--check` and the worker: the cluster is not ready (`escalation topics` makes it). This module
imports nothing, so the pure decision core can derive its errors from it too.
"""

from __future__ import annotations

from typing import ClassVar, Final

EXIT_OK: Final[int] = 0
EXIT_FAILED: Final[int] = 1
EXIT_USAGE: Final[int] = 2


class EscalationError(Exception):
    """Root of every error this project raises on purpose; the message is meant for the user."""

    exit_code: ClassVar[int] = EXIT_FAILED


class UsageError(EscalationError, ValueError):
    """The command cannot run as given (bad arguments, a missing file); the message says why."""

    exit_code: ClassVar[int] = EXIT_USAGE


class BadInputError(EscalationError, ValueError):
    """Input that cannot be used as given: a malformed file, record or policy, named."""

    exit_code: ClassVar[int] = EXIT_USAGE


class RunError(EscalationError, RuntimeError):
    """A correct command failed while running: the cluster refused, a write failed, a timeout."""

    exit_code: ClassVar[int] = EXIT_FAILED


class BrokerUnreachableError(RunError):
    """No broker of the bootstrap list answered in time; names the address and the wait."""

    def __init__(self, address: str, seconds: float) -> None:
        self.address = address
        self.seconds = seconds
        super().__init__(f"no Kafka broker answered at {address} within {seconds:g} s")
