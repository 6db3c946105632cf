"""Logging set-up: every record carries the request id of the call it belongs to, and its trace
and span ids when tracing is on (shared.tracing).

``fmt="json"`` (LUMEN_<SERVICE>_LOG_FORMAT=json) writes one JSON object per line with the fields
ts, level, service, logger, request_id, trace_id, span_id (null outside a traced call), message,
and exception when there is one."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import TextIO

from shared import tracing

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.trace_id, record.span_id = tracing.current_ids() or (None, None)
        return True


class _JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "trace_id": getattr(record, "trace_id", None),
            "span_id": getattr(record, "span_id", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(service: str, level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Root logging to ``stream`` (stderr) as ``fmt``: 'text' or 'json'."""
    if fmt not in ("text", "json"):
        raise ValueError(f"log_format must be 'text' or 'json', got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s {service} [%(request_id)s] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
