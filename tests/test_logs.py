"""Log redaction: structlog events, nested values and every stdlib logger's lines."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from stream import logs

PII = "mail jane@example.org, call +44 20 7946 0958, card 4111-1111-1111-1111"


def test_redact_replaces_emails_phones_and_card_numbers() -> None:
    assert logs.redact(PII) == "mail [email], call [phone], card [card]"


def test_structlog_events_are_redacted_down_to_nested_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("info")
    structlog.get_logger("t").warning(
        "rejected", reason=PII, record={"text": "hello", "note": ["a@b.io"]}, email="x@y.io"
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["reason"] == "mail [email], call [phone], card [card]"
    assert line["record"] == {"text": "[redacted]", "note": ["[email]"]}
    assert line["email"] == "[redacted]"


def test_library_log_lines_and_tracebacks_are_redacted() -> None:
    logs.configure("info")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    # A handler added after configure (as the Faust worker adds its own) still gets redacted lines
    handler = Keep()
    logger = logging.getLogger("faust.test")
    logger.addHandler(handler)
    try:
        logger.warning("failed on %r", {"value": PII})
        try:
            raise ValueError(PII)
        except ValueError:
            logger.exception("crashed")
    finally:
        logger.removeHandler(handler)
    assert (
        records[0].getMessage() == "failed on {'value': 'mail [email], call [phone], card [card]'}"
    )
    assert records[1].exc_text is not None
    assert "jane@example.org" not in records[1].exc_text and "[email]" in records[1].exc_text
