"""Structured JSON logs. Phone numbers are masked wherever they appear; fields come in `extra={"fields": ...}`."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

# An E.164 number (+ and 7 to 15 digits), or a bare run of 10 to 15 digits: not dates, not ids.
_PHONE = re.compile(r"\+\d{7,15}|(?<![\w.-])\d{10,15}(?![\w.-])")


def mask_phone(text: str) -> str:
    """+77011234567 -> +770*****567: enough to tell numbers apart in an incident, not to call her."""

    def _mask(m: re.Match) -> str:
        digits = m.group(0)
        if len(digits) <= 6:
            return digits
        return digits[:4] + "*" * (len(digits) - 7) + digits[-3:]

    return _PHONE.sub(_mask, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return mask_phone(orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode())


def setup(level: str = "INFO", stream=None) -> None:
    # Nothing here writes a record's thread, process or source line: not gathering them is a third of a log line's
    # cost (the logging HOWTO's "Optimization"), and the outbox's log notifier writes one for every message.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
