"""structlog JSON logging with customer PII (emails, phone numbers, names) redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Not after a "." or a digit: the fraction of a decimal number is no phone or card number.
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d ()-]{7,}\d(?!\w)")
# 13-19 digits, optionally grouped by spaces or dashes: a payment card number's shape.
_CARD = re.compile(r"(?<![\d.])(?:\d[ -]?){12,18}\d(?![\d.])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if _luhn(digits) else match.group()


# Keys whose values are personal by nature, whatever they look like.
_PII_KEYS = frozenset(
    {"name", "customer_name", "full_name", "email", "primary_email", "phone", "text"}
)


def _phone(match: re.Match[str]) -> str:
    # 12 or more bare digits are an epoch timestamp or an offset: phones are grouped or have a +.
    text = match.group()
    return text if text.isdigit() and len(text) >= 12 else "[phone]"


def redact(value: str) -> str:
    return _PHONE.sub(_phone, _CARD.sub(_card, _EMAIL.sub("[email]", value)))


def _redact_nested(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: "[redacted]" if k in _PII_KEYS and v is not None else _redact_nested(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_nested(v) for v in value]
    return value


def _redacting_factory(
    factory: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """Redacts every stdlib log record (Faust, aiokafka, librdkafka) when it is created.

    A library's error can carry the record it failed on. Redacting at creation, rather than in a
    handler, holds whichever handlers the worker's framework installs after `configure`.
    """

    def create(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    create.redacting = True  # type: ignore[attr-defined]
    return create


def redact_pii(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Logs leave the process; customer identities must not, so this runs last before rendering."""
    for key, value in event_dict.items():
        if key in _PII_KEYS and value is not None:
            event_dict[key] = "[redacted]"
        else:
            event_dict[key] = _redact_nested(value)
    return event_dict


def configure(level: str = "info") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacting", False):
        logging.setLogRecordFactory(_redacting_factory(factory))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            redact_pii,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


class _LibrdkafkaLog:
    """What confluent-kafka calls with each librdkafka log line (`logger` in a client's config)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        # A client retries refused connections on its own, and every caller reports a failure it
        # gives up on in one sentence naming the address; so librdkafka's errors and warnings are
        # detail (debug), and only its critical lines stay loud.
        demoted = logging.ERROR if level >= logging.CRITICAL else logging.DEBUG
        self._logger.log(demoted, msg, *args, **kwargs)


LIBRDKAFKA_LOGGER_NAME = "escalation.librdkafka"


def librdkafka_log() -> Any:
    """The `logger` for a confluent-kafka client config: its lines join the project's logging."""
    return _LibrdkafkaLog(logging.getLogger(LIBRDKAFKA_LOGGER_NAME))
