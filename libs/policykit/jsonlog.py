"""JSON logs to stdout with severity, timestamp, and the event/regulation being handled."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import datetime, timezone

# Set while an event or request is handled, so every line logged meanwhile names it.
current_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)
current_regulation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "regulation_id", default=None)
# The type of the event being handled, for the audit log (policykit.audit).
current_event_type: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "event_type", default=None)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "severity": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, var in (("event_id", current_event_id), ("regulation_id", current_regulation_id)):
            if var.get():
                line[key] = var.get()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(service: str, level: str = "INFO") -> None:
    """Sends every logger's records to stdout as one JSON object a line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Kafka clients are chatty at INFO about every connection.
    for noisy in ("kafka", "aiokafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
