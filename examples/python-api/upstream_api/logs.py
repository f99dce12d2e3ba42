"""JSON lines on stdout for everything the process writes: this service's
lines, uvicorn's, warnings and uncaught exceptions.

The shape follows the gateway's pino lines so one log pipeline reads both:
numeric ``level`` (pino's: 20 debug, 30 info, 40 warn, 50 error, 60 fatal),
ISO ``time``, ``service``, ``msg``, then the fields, with ``reqId`` and
``trace_id`` named as the gateway names them. A line never carries a token,
a cookie or a secret: the service logs fields it builds itself, never
headers.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import traceback
from datetime import datetime, timezone
from typing import Any

SERVICE = "python-api"
LOGGER = "upstream_api"

# Python level → pino level.
_PINO_LEVELS = {logging.DEBUG: 20, logging.INFO: 30, logging.WARNING: 40, logging.ERROR: 50, logging.CRITICAL: 60}
# LOG_LEVEL value → Python level.
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}

# The LogRecord attributes every record has; anything else came in `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "level": _PINO_LEVELS.get(record.levelno, 30),
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "service": SERVICE,
        }
        if record.name != LOGGER:
            line["logger"] = record.name
        line["msg"] = record.getMessage()
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            err_type, err, tb = record.exc_info
            line["err"] = {
                "type": err_type.__name__,
                "message": str(err),
                "stack": "".join(traceback.format_exception(err_type, err, tb)),
            }
        return json.dumps(line, default=str, separators=(",", ":"))


class ClientBytesFilter(logging.Filter):
    """uvicorn logs a malformed request with the HTTP parser's exception, whose
    message quotes the bytes the client sent (a token in a query string, say):
    keep only the exception's type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None and record.getMessage().startswith("Invalid HTTP request"):
            record.err = {"type": record.exc_info[0].__name__}
            record.exc_info = None
            record.exc_text = None
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """A logging.config dictConfig for this service and uvicorn (uvicorn.Config(log_config=…))."""
    python_level = logging.getLevelName(LEVELS.get(level, logging.INFO))
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "filters": {"client_bytes": {"()": f"{__name__}.ClientBytesFilter"}},
        "handlers": {"stdout": handler},
        "loggers": {
            LOGGER: {"handlers": ["stdout"], "level": python_level, "propagate": False},
            # uvicorn's own lines (start-up, shutdown, protocol errors). Its
            # access log is off: this service writes one line per request.
            "uvicorn": {"handlers": ["stdout"], "level": python_level, "propagate": False},
            "uvicorn.error": {"level": python_level, "filters": ["client_bytes"]},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        # Anything else (warnings, libraries) as JSON too.
        "root": {"handlers": ["stdout"], "level": "WARNING"},
    }


def configure_logging(level: str = "info") -> logging.Logger:
    """Apply log_config, route warnings and uncaught exceptions through it."""
    logging.config.dictConfig(log_config(level))
    logging.captureWarnings(True)
    logger = logging.getLogger(LOGGER)

    def excepthook(err_type: type[BaseException], err: BaseException, tb: Any) -> None:
        logger.critical("uncaught exception", exc_info=(err_type, err, tb))

    sys.excepthook = excepthook
    return logger
