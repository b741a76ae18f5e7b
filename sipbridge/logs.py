"""How the bridge writes its log: text lines for people, or one JSON object per line (``logging.json: true``)
for log pipelines, as the Go service's ``logging.json`` does.

A call's lines carry its identifiers as fields (`CALL_FIELDS`: LiveKit's call ID, the SIP Call-ID, the room and
the participant identity once known), set by `sipbridge.calls.services.CallLog`. The text form writes them in a
``[callID=... sipCallID=...]`` prefix; the JSON form as keys of the object, beside ``time``, ``level``,
``logger`` and ``msg`` (and ``error`` with the traceback when there is one).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

CALL_FIELDS = ("callID", "sipCallID", "room", "participant")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def call_fields(record: logging.LogRecord) -> dict[str, str]:
    return {name: value for name in CALL_FIELDS if (value := getattr(record, name, None))}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = call_fields(record)
        if fields:
            record.message = "[" + " ".join(f"{k}={v}" for k, v in fields.items()) + "] " + record.message
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **call_fields(record),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, *, as_json: bool, component_levels: Mapping[str, str] | None = None) -> None:
    """The root logger's one handler, on stderr, and a level per component (``logging.component_levels``: ``sip``,
    ``media``, ``room``, ``calls``, ``api``, ``store``, ``cluster``, ``psrpc`` name our packages, ``livekit`` the
    rtc SDK's own log; a dotted name is a logger's name)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level(level))
    for component, component_level in (component_levels or {}).items():
        name = component if component == "livekit" or "." in component else f"sipbridge.{component}"
        logging.getLogger(name).setLevel(_level(component_level))


def _level(name: str) -> str:
    return "WARNING" if name.lower() == "warn" else name.upper()
