"""`escalation policy test` and `escalation policy capture`, and the suite gate of `publish`.

Exit codes follow stream/errors.py: 0 every case passed; 1 a case failed (or a known failure now
passes); 2 a case file, the event file or the policy is malformed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from stream.command_io import check_output_file, policy_problem
from stream.commands import load_named_policy, settings_of
from stream.core.policy import Policy
from stream.errors import UsageError
from stream.settings import Settings


def policy_test(
    ctx: typer.Context,
    cases: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Case files or folders of case files (*.yaml); the configured suite "
            "(ESCALATION_POLICY_TESTS_PATH) if omitted."
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="The policy to test; the configured policy file if omitted."),
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML here (for CI).")] = None,
) -> None:
    """Run policy test cases against a policy: a table, failures explained, exit 1 if any fails."""
    from stream.policytest.load import load_cases
    from stream.policytest.report import table, write_junit
    from stream.policytest.run import CasesFailedError, run_cases

    settings = settings_of(ctx)
    policy_path = policy if policy is not None else settings.policy_path
    tested = load_named_policy(policy_path)
    if junit is not None:
        check_output_file(junit)
    results = run_cases(load_cases(cases or [settings.policy_tests_path]), tested)
    typer.echo(f"policy {tested.version} ({policy_path})")
    typer.echo(table(results))
    if junit is not None:
        write_junit(results, junit)
    failed = [result for result in results if not result.passed]
    if failed:
        raise CasesFailedError(
            f"{len(failed)} of {len(results)} policy test case(s) failed under policy "
            f"{tested.version}"
        )


def policy_capture(
    ctx: typer.Context,
    events: Annotated[Path, typer.Option(help="A JSON Lines event file (replay or export).")],
    conversation: Annotated[str, typer.Option(help="The conversation id to capture.")],
    expect: Annotated[
        Literal["continue", "offer_transfer", "escalate"] | None,
        typer.Option(help="What must happen; what the policy decides now if omitted."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The case name.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the case file here (a folder gets <name>.yaml); stdout if omitted."
        ),
    ] = None,
    redact: Annotated[
        bool, typer.Option(help="Mask emails and phone numbers in the text, as the logs do.")
    ] = False,
    policy: Annotated[
        Path | None,
        typer.Option(help="The policy that sets the expectation; the configured one if omitted."),
    ] = None,
) -> None:
    """Write the test case of a real conversation from an event file."""
    from stream.policytest.build import slug
    from stream.policytest.capture import capture

    policy_path = policy if policy is not None else settings_of(ctx).policy_path
    deciding = load_named_policy(policy_path)
    target: Path | None = None
    if out is not None:
        target = out / f"{slug(name or f'captured {conversation}')}.yaml" if out.is_dir() else out
        if target.exists():
            raise UsageError(f"{target} exists; choose another --out")
        check_output_file(target)
    captured = capture(events, conversation, deciding, expect=expect, name=name, redacted=redact)
    for note in captured.notes:
        typer.echo(f"note: {note}", err=True)
    if target is None:
        typer.echo(captured.yaml_text, nl=False)
        return
    target.write_text(captured.yaml_text, encoding="utf-8")
    typer.echo(f"wrote case {captured.case.name!r} to {target}", err=True)


def publish_gate(
    policy: Policy, settings: Settings, *, tests: Path | None, skip_tests: bool
) -> None:
    """Before `publish` writes: the value diff against the policy in force, then the suite.

    Raises CaseFormatError (exit 2) for a malformed suite and CasesFailedError (exit 1) for a
    failing one, so the policy is not published.
    """
    from stream.broker import require_broker
    from stream.core.policy import PolicyError, load_policy
    from stream.policytest.gate import read_policy_in_force, value_diff
    from stream.policytest.load import CaseFormatError, load_cases
    from stream.policytest.report import table
    from stream.policytest.run import CasesFailedError, run_cases, summary_line

    try:
        initial: Policy | None = load_policy(settings.policy_path)
    except PolicyError as exc:
        typer.echo(
            f"note: the start-up policy {settings.policy_path} is invalid: {policy_problem(exc)}",
            err=True,
        )
        initial = None
    if initial is not None:
        try:
            require_broker(settings.confluent_config(), settings.broker_wait_seconds)
            in_force, source = read_policy_in_force(
                settings.topic("escalation.policy"),
                settings.confluent_config(),
                initial,
                timeout_s=settings.broker_wait_seconds,
            )
        except Exception as exc:  # the diff informs; publishing reports its own broker errors
            typer.echo(f"cannot read the policy in force: {exc}", err=True)
        else:
            changes = value_diff(in_force, policy)
            typer.echo(f"changes against policy {in_force.version} in force ({source}):")
            typer.echo("\n".join(f"  {line}" for line in changes) if changes else "  (none)")
            if changes and in_force.version == policy.version:
                typer.echo(
                    f"warning: values change but the version stays {policy.version!r}; decisions "
                    "would not tell the two apart",
                    err=True,
                )
    if skip_tests:
        typer.echo("warning: the policy test suite was skipped (--skip-tests)", err=True)
        return
    suite = tests if tests is not None else settings.policy_tests_path
    try:
        loaded = load_cases([suite])
    except CaseFormatError as exc:
        raise CaseFormatError(
            exc.problems, f"not published: the policy test suite {suite} is malformed"
        ) from None
    results = run_cases(loaded, policy)
    # A known failure the candidate fixes is good news, not a reason to refuse it.
    failed = [result for result in results if result.status == "FAIL"]
    typer.echo(table(results) if failed else f"policy tests ({suite}): {summary_line(results)}")
    for result in results:
        if result.status == "XPASS":
            typer.echo(f"note: known failure {result.loaded.name!r} passes now", err=True)
    if failed:
        raise CasesFailedError(
            f"not published: {len(failed)} of {len(results)} policy test case(s) fail under "
            f"policy {policy.version}; fix the policy (or the cases), or publish with --skip-tests"
        )


def register(policy_app: typer.Typer) -> None:
    """Add the policy test commands to the `escalation policy` group."""
    policy_app.command("test")(policy_test)
    policy_app.command("capture")(policy_capture)
