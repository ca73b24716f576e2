"""structlog JSON logging with customer PII (emails, phone numbers, names) redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d ()-]{7,}\d(?!\w)")
# Keys whose values are personal by nature, whatever they look like.
_PII_KEYS = frozenset(
    {"name", "customer_name", "full_name", "email", "primary_email", "phone", "text"}
)


def redact(value: str) -> str:
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", value))


def redact_pii(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Logs leave the process; customer identities must not, so this runs last before rendering."""
    for key, value in event_dict.items():
        if key in _PII_KEYS and value is not None:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def configure(level: str = "info") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
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
