"""Every bad input the CLI can be given gets one sentence and the exit code of its kind.

Exit 2: the command, an input file or a policy is wrong. Exit 1: the run failed or the cluster did
not answer. No case may print a traceback or librdkafka's own log lines.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream.cli import app
from stream.settings import REPO_ROOT
from stream.testing import EventFactory, write_events
from tests.commands import run_module

NOT_UTF8 = b"version: \xff\xfe caf\xe9\n"


def _invoke(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), f"uncaught {result.exception!r}"
    return result.exit_code, result.output


def _sentence(output: str) -> str:
    """The whole output must be short prose: no traceback, no librdkafka line."""
    assert "Traceback" not in output
    assert "rdkafka" not in output and "Connection refused" not in output
    return output


def _unboxed(output: str) -> str:
    """Click's usage error as one line: the words of the box rich draws and wraps around it."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", _sentence(output)).split())


# --- policy files ------------------------------------------------------------------------------


def test_policy_validate_on_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(NOT_UTF8)
    code, out = _invoke("policy", "validate", str(path))
    assert code == 2
    assert f"{path}: invalid policy: policy file {path} is not UTF-8 text" in _sentence(out)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('version: "x"\nconfidence: [\n',
         "line 3, column 1: expected the node content, but found the end of the file "
         "(while parsing a flow node)"),
        ('version: "x"\nconfidence: {a: 1\nfoo: [1\n',
         "line 3, column 4: expected ',' or '}', but got ':' "
         "(while parsing a flow mapping that starts at line 2, column 13)"),
        ('version: "x"\nname: "unterminated\n',
         "line 3, column 1: found unexpected end of the file "
         "(while scanning a quoted scalar that starts at line 2, column 7)"),
        ("version: *x\n", "line 1, column 10: found undefined alias 'x'"),
    ],
    ids=["unclosed-list", "unclosed-mapping", "unclosed-quote", "undefined-alias"],
)  # fmt: skip
def test_a_policy_yaml_syntax_error_is_one_line_naming_file_line_and_column(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(content, encoding="utf-8")
    code, out = _invoke("policy", "validate", str(path))
    assert code == 2
    assert _sentence(out) == f"error: {path}: invalid policy: not valid YAML at {expected}\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read policy file {path}: Is a directory"),
        ("", "a policy file must be a YAML mapping"),
        ("- a list\n", "a policy file must be a YAML mapping"),
        ('version: "x"\nfoo: 1\n', "foo: unknown field (typo?)"),
    ],
    ids=["a-folder", "empty", "a-list", "unknown-key"],
)
def test_a_policy_that_is_not_one_is_refused_naming_the_file(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "policy.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content, encoding="utf-8")
    code, out = _invoke("policy", "validate", str(path))
    assert code == 2
    assert f"error: {path}: invalid policy: " + expected.format(path=path) in _sentence(out)


def test_an_invalid_policy_exits_2_in_validate_and_in_backtest(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('version: "x"\nconfidence: {thresholds: {financial: 2}}\n', encoding="utf-8")
    events = write_events(tmp_path / "e.jsonl", [EventFactory().customer("hello")])
    validate_code, validate_out = _invoke("policy", "validate", str(path))
    backtest_code, backtest_out = _invoke(
        "backtest", "--policy", str(path), "--events", str(events), "--out", str(tmp_path / "o")
    )
    assert (validate_code, backtest_code) == (2, 2)
    assert "confidence.thresholds" in _sentence(validate_out)
    assert f"{path}: invalid candidate policy: confidence.thresholds" in _sentence(backtest_out)


def test_a_yaml_syntax_error_is_the_same_line_in_every_command(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('version: "x"\nconfidence: [\n', encoding="utf-8")
    events = write_events(tmp_path / "e.jsonl", [EventFactory().customer("hello")])
    problem = "not valid YAML at line 3, column 1: expected the node content"
    outputs = {
        "validate": _invoke("policy", "validate", str(path)),
        "backtest": _invoke(
            "backtest", "--policy", str(path), "--events", str(events), "--out", str(tmp_path / "o")
        ),
        "replay --simulate": _invoke(
            "replay", "--simulate", str(path), "--jsonl", str(tmp_path / "r.jsonl")
        ),
        "worker": _invoke("worker", env={"ESCALATION_POLICY_PATH": str(path)}),
    }
    for command, (code, out) in outputs.items():
        assert code == 2, command
        assert len(_sentence(out).splitlines()) == 1, (command, out)
        assert out.startswith(f"error: {path}: invalid ") and problem in out, (command, out)


# --- signals -----------------------------------------------------------------------------------


def test_signals_on_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b'{"id": 1, "text": "ok"}\n' + NOT_UTF8)
    code, out = _invoke("signals", "--input", str(path))
    assert code == 2
    assert f"{path}:2: not UTF-8 text" in _sentence(out)


def test_output_into_a_pipe_the_reader_closed_ends_quietly(tmp_path: Path) -> None:
    # `escalation signals --input big.jsonl | head -1`: more output than a pipe holds, and the
    # reader gone after one line. Not an error to report, as click does for --help.
    lines = tmp_path / "lines.jsonl"
    lines.write_text("".join(f'{{"id": {n}, "text": "where is my bag?"}}\n' for n in range(3000)))
    with subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "signals", "--input", str(lines)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as command:  # fmt: skip
        assert command.stdout is not None and command.stderr is not None
        assert command.stdout.readline().startswith(b'{"id": 0')
        command.stdout.close()
        stderr = command.stderr.read()
        code = command.wait(timeout=120)
    assert (code, stderr) == (1, b"")


@pytest.mark.parametrize("content", ["", "\n  \n"], ids=["empty", "blank-lines"])
def test_signals_on_an_empty_file_is_refused_as_nothing_to_score(
    tmp_path: Path, content: str
) -> None:
    # As a backtest of an empty event file: an empty result would look like a success.
    path = tmp_path / "lines.jsonl"
    path.write_text(content)
    output = tmp_path / "scored.jsonl"
    code, out = _invoke("signals", "--input", str(path), "--output", str(output))
    assert code == 2
    assert _sentence(out) == f"error: input file {path} has no lines to score\n"
    assert not output.exists()


# --- replay ------------------------------------------------------------------------------------


def test_replay_refuses_a_negative_number_of_conversations() -> None:
    code, out = _invoke("replay", "--conversations", "-5", "--jsonl", "/dev/null")
    assert code == 2
    assert "Invalid value for '--conversations': Input should be greater than or equal to 0" in (
        _unboxed(out)
    )


def test_replay_of_no_conversation_is_refused_as_nothing_to_replay(tmp_path: Path) -> None:
    out_file = tmp_path / "events.jsonl"
    code, out = _invoke("replay", "--conversations", "0", "--jsonl", str(out_file))
    assert code == 2
    assert _sentence(out) == (
        "error: --conversations 0: nothing to replay; give 1 or more, or leave it out to "
        "replay all\n"
    )
    assert not out_file.exists()


def test_replay_from_a_missing_source(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv.bz2"
    code, out = _invoke("replay", "--source", str(missing), "--jsonl", str(tmp_path / "o.jsonl"))
    assert code == 2
    assert f"corpus file {missing} does not exist" in _sentence(out)
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("events.csv", b"a,b\n1,2\n", "is not the twcs airline corpus: no column first_tweet_id"),
        ("corpus.csv.bz2", b"not bzip2 at all", "cannot be read as the twcs airline corpus"),
        ("latin1.csv", b"first_tweet_id,first_utterance,context\n1,\xe9,x\n", "cannot be read"),
        ("empty.csv", b"first_tweet_id,first_utterance,context,tag\n", "no usable conversation"),
    ],
)
def test_replay_from_a_file_of_the_wrong_format(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    code, out = _invoke("replay", "--source", str(source), "--jsonl", str(tmp_path / "o.jsonl"))
    assert code == 2
    assert f"{source}" in out and expected in _sentence(out)
    assert "wrote" not in out


@pytest.mark.parametrize("rate", ["-1", "0", "nan"])
def test_replay_refuses_a_rate_that_is_not_positive(rate: str) -> None:
    code, out = _invoke("replay", "--rate", rate)
    assert code == 2
    assert f"--rate must be a positive number of events per second, got {rate}" in _sentence(out)


def test_replay_into_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "events.jsonl"
    code, out = _invoke("replay", "--conversations", "1", "--jsonl", str(target))
    assert code == 2
    assert f"folder {target.parent} does not exist" in _sentence(out)


# --- files named on the command line ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["signals", "--input", "{dir}"], "input file {dir} is a folder, not a file"),
        (["replay", "--source", "{dir}", "--jsonl", "{tmp}/o.jsonl"],
         "corpus file {dir} is a folder, not a file"),
        (["backtest", "--policy", "policy/default.yaml", "--events", "{dir}", "--out",
          "{tmp}/o"], "event file {dir} is a folder, not a file"),
        (["calibrate", "--month", "2023-11", "--policy", "policy/default.yaml", "--events",
          "{dir}", "--out", "{tmp}/o"], "event file {dir} is a folder, not a file"),
    ],
    ids=["signals", "replay", "backtest", "calibrate"],
)  # fmt: skip
def test_an_input_file_that_is_a_folder(tmp_path: Path, args: list[str], expected: str) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    fill = {"{dir}": str(folder), "{tmp}": str(tmp_path)}
    code, out = _invoke(*(_filled(a, fill) for a in args))
    assert code == 2
    assert f"error: {_filled(expected, fill)}\n" == _sentence(out)


def _filled(text: str, fill: dict[str, str]) -> str:
    for mark, value in fill.items():
        text = text.replace(mark, value)
    return text


@pytest.mark.parametrize(
    ("args", "target", "expected"),
    [
        (["replay", "--conversations", "1", "--jsonl", "{out}"], "folder", "it is a folder"),
        (["replay", "--conversations", "1", "--jsonl", "{out}"], "locked",
         "folder {parent} is not writable"),
        (["signals", "--input", "{events}", "--output", "{out}"], "missing",
         "folder {parent} does not exist"),
        (["signals", "--input", "{events}", "--output", "{out}"], "folder", "it is a folder"),
        (["export", "--from", "2024-06-01", "--to", "2024-06-02", "--out", "{out}"], "in-a-file",
         "cannot create folder {parent}: Not a directory"),
        (["export", "--from", "2024-06-01", "--to", "2024-06-02", "--out", "{out}"], "folder",
         "it is a folder"),
        (["policy", "test", "--junit", "{out}"], "missing", "folder {parent} does not exist"),
    ],
    ids=["replay-folder", "replay-locked", "signals-missing", "signals-folder", "export-in-a-file",
         "export-folder", "policy-test-missing"],
)  # fmt: skip
def test_an_output_file_that_cannot_be_written_is_refused_before_any_work(
    tmp_path: Path, args: list[str], target: str, expected: str
) -> None:
    # Export is refused before it asks for a broker: none answers at the default address here.
    events = _one_event_file(tmp_path)
    out_path = {
        "folder": tmp_path,
        "missing": tmp_path / "missing" / "out.jsonl",
        "in-a-file": events / "folder" / "out.jsonl",
        "locked": _locked_folder(tmp_path) / "out.jsonl" if target == "locked" else tmp_path,
    }[target]
    fill = {"{out}": str(out_path), "{events}": str(events), "{parent}": str(out_path.parent)}
    code, out = _invoke(*(_filled(a, fill) for a in args))
    assert code == 2
    assert f"error: cannot write {out_path}: {_filled(expected, fill)}" in _sentence(out)
    assert "Errno" not in out
    assert not (tmp_path / "missing").exists()


# --- backtest ----------------------------------------------------------------------------------


def _one_event_file(tmp_path: Path) -> Path:
    return write_events(tmp_path / "e.jsonl", [EventFactory().customer("hello")])


def _backtest(events: Path, out_dir: Path, *extra: str) -> tuple[int, str]:
    return _invoke(
        "backtest", "--policy", "policy/default.yaml", "--events", str(events),
        "--out", str(out_dir), *extra,
    )  # fmt: skip


def test_backtest_into_a_folder_that_cannot_be_written(tmp_path: Path) -> None:
    events = _one_event_file(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out_dir = blocker / "report"
    code, out = _backtest(events, out_dir)
    assert code == 2
    assert f"cannot create output directory {out_dir}" in _sentence(out)


def test_backtest_into_a_file_says_it_is_not_a_folder(tmp_path: Path) -> None:
    events = _one_event_file(tmp_path)
    code, out = _backtest(events, events)
    assert code == 2
    assert _sentence(out) == f"error: output directory {events} is a file, not a folder\n"


def _locked_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write: its mode, or for root (which passes every mode
    check; CI runs as root) sysfs, where nobody creates files."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        return locked
    sysfs = Path("/sys/kernel")
    if not sysfs.is_dir():
        pytest.skip("root, and no /sys/kernel to stand for a folder root cannot write")
    return sysfs


def test_backtest_into_a_read_only_folder(tmp_path: Path) -> None:
    events = _one_event_file(tmp_path)
    locked = _locked_folder(tmp_path)
    code, out = _backtest(events, locked)
    assert code == 2
    assert f"output directory {locked} is not writable" in _sentence(out)
    assert "Errno" not in out


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_backtest_on_an_empty_events_file(tmp_path: Path, content: str) -> None:
    events = tmp_path / "empty.jsonl"
    events.write_text(content)
    out_dir = tmp_path / "report"
    code, out = _backtest(events, out_dir)
    assert code == 2
    assert f"event file {events} has no events" in _sentence(out)
    assert not (out_dir / "report.json").exists()


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2024-06-02", "2024-06-01", "--to (2024-06-01) must be after --from (2024-06-02)"),
        ("2024-06-01", "2024-06-01", "--to (2024-06-01) must be after --from (2024-06-01)"),
        ("yesterday", "2024-06-01", "time 'yesterday' is neither epoch milliseconds nor ISO-8601"),
        ("-5", "2024-06-01", "time '-5' is before 1970"),
    ],
)
def test_backtest_refuses_a_time_range_that_is_not_one(
    tmp_path: Path, start: str, end: str, expected: str
) -> None:
    # Refused before any broker is asked: the default address may have none.
    code, out = _invoke(
        "backtest", "--policy", "policy/default.yaml", "--from", start, "--to", end,
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2
    assert expected in _sentence(out)


def test_backtest_on_a_file_whose_every_line_is_skipped(tmp_path: Path) -> None:
    events = tmp_path / "bad.jsonl"
    events.write_text('garbage\n{"x": 1}\n')
    out_dir = tmp_path / "report"
    code, out = _backtest(events, out_dir, "--on-error", "skip")
    assert code == 2
    assert f"event file {events} has no usable event (every line was skipped" in _sentence(out)
    assert not (out_dir / "report.json").exists()


def _tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize(
    ("content", "code_expected", "expected"),
    [
        ('{"type": "message"}\n', 2, "e.jsonl:1:"),
        ("garbage\n", 2, "e.jsonl:1: not valid JSON"),
        (None, 2, "e.jsonl does not exist"),
    ],
    ids=["malformed-event", "not-json", "missing-file"],
)
def test_a_failed_backtest_leaves_no_folder_it_created(
    tmp_path: Path, content: str | None, code_expected: int, expected: str
) -> None:
    events = tmp_path / "e.jsonl"
    if content is not None:
        events.write_text(content)
    out_dir = tmp_path / "reports" / "june"
    code, out = _backtest(events, out_dir)
    assert code == code_expected
    assert expected in _sentence(out)
    assert not (tmp_path / "reports").exists()


def test_a_failed_backtest_keeps_the_folder_the_user_had_and_what_was_in_it(
    tmp_path: Path,
) -> None:
    # A finished earlier run in the folder: its decisions and report stay as they were.
    out_dir = tmp_path / "report"
    assert _backtest(_one_event_file(tmp_path), out_dir)[0] == 0
    before = {
        name: (out_dir / name).read_bytes() for name in _tree(out_dir) if (out_dir / name).is_file()
    }
    assert {"candidate/decisions.jsonl", "report.json"} <= before.keys()
    (out_dir / "notes.txt").write_text("mine")
    (out_dir / "empty-of-mine").mkdir()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("garbage\n")
    code, out = _backtest(bad, out_dir)
    assert code == 2
    assert "bad.jsonl:1: not valid JSON" in _sentence(out)
    assert _tree(out_dir) == sorted(
        [*before, "candidate", "baseline", "notes.txt", "empty-of-mine"]
    )
    assert all((out_dir / name).read_bytes() == data for name, data in before.items())


@pytest.mark.parametrize("content", ["", "\n\n  \n"], ids=["empty", "blank-lines"])
def test_calibrate_on_an_empty_events_file_is_refused_as_backtest_is(
    tmp_path: Path, content: str
) -> None:
    events = tmp_path / "empty.jsonl"
    events.write_text(content)
    out_dir = tmp_path / "review"
    code, out = _invoke(
        "calibrate", "--month", "2023-11", "--policy", "policy/default.yaml",
        "--events", str(events), "--out", str(out_dir),
    )  # fmt: skip
    backtest_code, backtest_out = _backtest(events, tmp_path / "report")
    assert (code, backtest_code) == (2, 2)
    assert _sentence(out) == f"error: event file {events} has no events\n" == backtest_out
    assert not out_dir.exists()


def test_a_failed_calibration_leaves_no_folder_it_created(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text("garbage\n")
    out_dir = tmp_path / "reviews" / "june"
    code, out = _invoke(
        "calibrate", "--month", "2024-06", "--policy", "policy/default.yaml",
        "--events", str(events), "--out", str(out_dir),
    )  # fmt: skip
    assert code == 2
    assert "e.jsonl:1: not valid JSON" in _sentence(out)
    assert not (tmp_path / "reviews").exists()


def test_on_error_is_a_choice(tmp_path: Path) -> None:
    events = _one_event_file(tmp_path)
    code, out = _backtest(events, tmp_path / "o", "--on-error", "ignore")
    assert code == 2
    assert "Invalid value for '--on-error': Value error, 'ignore' is not one of 'stop', 'skip'" in (
        _unboxed(out)
    )


# --- settings ----------------------------------------------------------------------------------


def test_an_invalid_setting_names_its_variable() -> None:
    code, out = _invoke(
        "policy", "validate", "policy/default.yaml", env={"ESCALATION_PARTITIONS": "abc"}
    )
    assert code == 2
    assert "invalid setting ESCALATION_PARTITIONS=abc" in _sentence(out)
    assert "pydantic" not in out


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ESCALATION_BROKER_WAIT_SECONDS", "soon", "Input should be a valid number"),
        ("ESCALATION_BROKER_WAIT_SECONDS", "0", "Input should be greater than 0"),
        ("ESCALATION_WEB_PORT", "99999", "Input should be less than or equal to 65535"),
        ("ESCALATION_LOG_LEVEL", "loud", "Input should be 'debug', 'info', 'warning' or 'error'"),
        ("ESCALATION_CALIBRATION_ENABLED", "maybe", "Input should be a valid boolean"),
        ("ESCALATION_SECURITY_PROTOCOL", "TLS", "Input should be 'PLAINTEXT', 'SSL'"),
        ("KAFKA_BOOTSTRAP_SERVERS", "", "String should have at least 1 character"),
    ],
)
def test_a_setting_of_the_wrong_type_names_its_variable(
    variable: str, value: str, expected: str
) -> None:
    env = {"ESCALATION_BOOTSTRAP_SERVERS": None, "KAFKA_BOOTSTRAP_SERVERS": None, variable: value}
    code, out = _invoke("policy", "validate", "policy/default.yaml", env=env)
    assert code == 2
    assert f"error: invalid setting {variable}={value}: {expected}" in _sentence(out)
    assert "pydantic" not in out


def test_a_secret_setting_is_never_echoed() -> None:
    code, out = _invoke(
        "policy",
        "validate",
        "policy/default.yaml",
        env={"ESCALATION_SASL_PASSWORD": "s3cret", "ESCALATION_SASL_MECHANISM": "MD5"},
    )
    assert code == 2
    assert "ESCALATION_SASL_MECHANISM=MD5" in out
    assert "s3cret" not in out


def test_worker_with_a_policy_file_that_is_missing_names_it(tmp_path: Path) -> None:
    typo = tmp_path / "defualt.yaml"
    code, out = _invoke("worker", env={"ESCALATION_POLICY_PATH": str(typo)})
    assert code == 2
    assert f"{typo}: invalid policy: cannot read policy file {typo}" in _sentence(out)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('version: "x"\nconfidnce: {}\n', "confidnce: unknown field"),
        ('version: "x"\nconfidence: [\n', "not valid YAML at line 3, column 1: "),
    ],
    ids=["a-misspelt-key", "a-yaml-syntax-error"],
)
def test_worker_with_a_policy_file_with_a_typo_names_it(
    tmp_path: Path, content: str, expected: str
) -> None:
    typo = tmp_path / "policy.yaml"
    typo.write_text(content, encoding="utf-8")
    code, out = _invoke("worker", env={"ESCALATION_POLICY_PATH": str(typo)})
    assert code == 2
    assert f"{typo}: invalid policy" in _sentence(out)
    assert expected in out and len(out.splitlines()) == 1


# --- topic definitions and the lag exporter --------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b'name: "x"\npartitions: [\n',
            "{path}: not valid YAML at line 3, column 1: expected the "
            "node content, but found the end of the file (while parsing a flow node)",
        ),
        (NOT_UTF8, "{path}: not UTF-8 text (byte 9: invalid start byte)"),
        (
            b"name: x\x07\n",
            "{path}: not valid YAML at character 7: #x0007 is not allowed "
            "(special characters are not allowed)",
        ),
        (None, "cannot read {path}: Is a directory"),
    ],
    ids=["yaml-syntax", "not-utf8", "control-character", "a-folder"],
)
def test_a_topic_definition_that_cannot_be_read_names_its_file(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "support.messages.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    code, out = _invoke("topics", "--check", "--dir", str(tmp_path))
    assert code == 2
    assert _sentence(out) == "error: " + expected.format(path=path) + "\n"


def test_lag_count_without_watch_or_serve_is_refused() -> None:
    # It bounds refreshes; a single measurement has none, so the option would do nothing.
    code, out = _invoke("lag", "--count", "3")
    assert code == 2
    assert _sentence(out) == (
        "error: --count bounds the refreshes of --watch or --serve; give one of them\n"
    )


def test_lag_serve_on_a_port_that_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = _invoke("lag", "--serve", str(port))
    assert code == 1
    assert f"error: cannot serve the lag on 127.0.0.1:{port}: Address already in use\n" == (
        _sentence(out)
    )


@pytest.mark.parametrize(
    ("args", "code_expected", "expected"),
    [
        (["--serve", "99999"], 2, "Invalid value for '--serve': Input should be less than or "
         "equal to 65535"),
        (["--serve", "9", "--host", "nohost.invalid"], 2,
         "error: cannot serve the lag on nohost.invalid:9:"),
    ],
    ids=["port", "host"],
)  # fmt: skip
def test_lag_serve_on_an_address_that_is_not_one(
    args: list[str], code_expected: int, expected: str
) -> None:
    code, out = _invoke("lag", *args)
    assert code == code_expected
    assert expected in _unboxed(out)


# --- no broker ---------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "args",
    [
        ["topics", "--check"],
        ["replay", "--conversations", "2"],
        ["export", "--from", "2024-06-01", "--to", "2024-06-02", "--out", "{tmp}/e.jsonl"],
        ["policy", "publish", "policy/default.yaml"],
        ["backtest", "--policy", "policy/default.yaml", "--from", "2024-06-01", "--to",
         "2024-06-02", "--out", "{tmp}/report"],
        ["calibrate", "--month", "2024-06", "--policy", "policy/default.yaml", "--from-topics",
         "--out", "{tmp}/review"],
        ["worker"],
        ["lag"],
    ],
    ids=["topics", "replay", "export", "policy-publish", "backtest-range", "calibrate-topics",
         "worker", "lag"],
)  # fmt: skip
def test_no_broker_is_one_sentence_naming_the_address(tmp_path: Path, args: list[str]) -> None:
    # Given a bootstrap address where nothing listens, run as a user would: the real command,
    # its real stderr (librdkafka writes straight to the process's stderr unless routed).
    address = f"127.0.0.1:{_closed_port()}"
    env = {
        **os.environ,
        "ESCALATION_BOOTSTRAP_SERVERS": address,
        "ESCALATION_BROKER_WAIT_SECONDS": "1",
        "ESCALATION_DATA_DIR": str(tmp_path / "data"),
    }
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = run_module("stream.cli", *argv, env=env)
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"error: no Kafka broker answered at {address} within 1 s\n"
    assert done.stdout == ""


def test_librdkafka_logs_go_through_logging_not_to_stderr(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `make demo` used to end with librdkafka's "Connection refused" lines when the broker stopped
    # before a client closed. Every client config comes from Settings, which routes those lines.
    from confluent_kafka import Producer

    from stream.logs import LIBRDKAFKA_LOGGER_NAME
    from stream.settings import Settings

    address = f"127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("ESCALATION_BOOTSTRAP_SERVERS", address)
    caplog.set_level("DEBUG", logger=LIBRDKAFKA_LOGGER_NAME)
    producer = Producer(Settings().confluent_config())
    producer.produce("any-topic", b"value")
    assert producer.flush(1.5) == 1  # never delivered
    del producer
    captured = capfd.readouterr()
    assert "rdkafka" not in captured.err and "Connection refused" not in captured.err
    routed = [r for r in caplog.records if r.name == LIBRDKAFKA_LOGGER_NAME]
    assert any("Connection refused" in r.getMessage() for r in routed)
    assert all(r.levelname == "DEBUG" for r in routed)


def test_the_demo_on_a_given_cluster_that_does_not_answer(tmp_path: Path) -> None:
    # Given KAFKA_BOOTSTRAP_SERVERS, `make demo` uses that cluster instead of starting one
    address = f"127.0.0.1:{_closed_port()}"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": address,
        "ESCALATION_BOOTSTRAP_SERVERS": address,
        "ESCALATION_BROKER_WAIT_SECONDS": "1",
        "ESCALATION_DATA_DIR": str(tmp_path / "data"),
    }
    done = run_module("stream.demo", env=env)
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"error: no Kafka broker answered at {address} within 1 s\n"
    assert "Traceback" not in done.stdout
