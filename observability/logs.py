"""Logging for `crm serve`: one JSON object per line (default), or plain text.

A JSON line has `timestamp` (ISO-8601 UTC), `level`, `logger`, `message`, `request_id` when
logged while serving a request, `exception` when there is one, and every `extra=` field.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from observability.request_id import current_request_id, install_log_record_factory

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}
# Uvicorn's colored duplicate of its message.
_DROPPED = frozenset({"color_message"})
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def _request_id(record: logging.LogRecord) -> str | None:
    request_id = getattr(record, "request_id", None)
    return request_id if isinstance(request_id, str) else current_request_id()


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := _request_id(record):
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _DROPPED and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:  # e.g. an int beyond 64 bits in an extra field
            return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2025-01-20 10:00:00,123 INFO crm.access [<request id>] POST /graphql 200 3.10ms`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = _request_id(record) or "-"
        return super().format(record)


def configure_logging(
    log_format: LogFormat = "json", level: str | int = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Send all logging (the app's and uvicorn's) to `stream` (stderr) in the given format.

    Replaces the root logger's handlers; returns the one installed.
    """
    install_log_record_factory()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Uvicorn's loggers go through the root handler (its access log is ours: crm.access).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
