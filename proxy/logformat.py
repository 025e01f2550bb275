"""Log lines as JSON (``log_format = "json"``), one object per line, for log pipelines:
time, level, logger, pid, message, and the context a line carries in ``extra`` (the
journal entry and transaction id, the vendor and its request id). Row values never
reach a log line above DEBUG, in either format."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

#: LogRecord attributes that are not context a caller added with ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "context",  # the text format's suffix of the session fields, which are fields here
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def set_levels(level: str) -> None:
    """The root logger's level, and the HTTP clients': httpx logs every request's URL
    at INFO, and vendor URLs carry row values (an external id, a SOQL query), so they
    are logged only when the level is DEBUG (at startup and on every reload)."""
    logging.getLogger().setLevel(level)
    debug = logging.getLevelName(level) == logging.DEBUG
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
