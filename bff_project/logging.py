"""Formats log records as one JSON object per line, for log shippers."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is
# emitted as a field of its own (trace ids, dependency names, outcomes).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record: time, level, logger, message and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()
