"""The inspector's configuration: ``inspector_port`` and the ``inspector`` block of config.yaml.

Kept apart from sipbridge.config so the inspector's keys are read in one place; config.py calls `parse` and keeps
the result. Errors go through the ``error`` type it is given, with a message that starts with the key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Error = Callable[[str], Exception]

DEFAULT_KEEP_CALLS = 200
DEFAULT_MAX_MEGABYTES = 64
DEFAULT_MAX_MESSAGES = 400
DEFAULT_HEP_CAPTURE_ID = 2001


@dataclass(frozen=True)
class HepTarget:
    host: str
    port: int


@dataclass(frozen=True)
class InspectorSettings:
    port: int = 0
    """``inspector_port``: where the web page listens; 0 means no page (traces are still kept for metrics and HEP)."""
    listen_ip: str = "127.0.0.1"
    """``inspector.listen_ip``: loopback unless the operator says otherwise (the page shows callers' numbers)."""
    keep_calls: int = DEFAULT_KEEP_CALLS
    """``inspector.keep_calls``: ended calls kept, the oldest dropped first."""
    max_megabytes: int = DEFAULT_MAX_MEGABYTES
    """``inspector.max_megabytes``: ended calls are dropped earlier when the kept traces would need more."""
    max_messages: int = DEFAULT_MAX_MESSAGES
    """``inspector.max_messages``: per call; beyond it the first and the last halves are kept."""
    hep: HepTarget | None = None
    """``inspector.hep``: ``host:port`` of a Homer (HEP v3 over UDP) collector."""
    hep_capture_id: int = DEFAULT_HEP_CAPTURE_ID
    hep_password: str = ""


KEYS = frozenset({"listen_ip", "keep_calls", "max_megabytes", "max_messages", "hep", "hep_capture_id", "hep_password"})


def parse(raw: Mapping[str, Any], error: Error) -> InspectorSettings:
    """``inspector_port`` and the ``inspector`` block of the whole configuration mapping ``raw``."""
    port = raw.get("inspector_port", 0)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise error(f"inspector_port: {port!r} is not a port number (0-65535)")
    block = raw.get("inspector") or {}
    if not isinstance(block, dict):
        raise error("inspector: must be a mapping (e.g. {keep_calls: 200})")
    unknown = sorted(set(block) - KEYS)
    if unknown:
        raise error(f"inspector.{unknown[0]}: unknown key (known: {', '.join(sorted(KEYS))})")
    listen_ip = str(block.get("listen_ip") or "127.0.0.1")
    try:
        ipaddress.ip_address(listen_ip)
    except ValueError:
        raise error(f"inspector.listen_ip: {listen_ip!r} is not an IP address") from None
    hep = block.get("hep")
    password = block.get("hep_password") or ""
    if not isinstance(password, str):
        raise error("inspector.hep_password: must be a string")
    return InspectorSettings(
        port=port,
        listen_ip=listen_ip,
        keep_calls=_count(block, "keep_calls", DEFAULT_KEEP_CALLS, 0, error),
        max_megabytes=_count(block, "max_megabytes", DEFAULT_MAX_MEGABYTES, 1, error),
        max_messages=_count(block, "max_messages", DEFAULT_MAX_MESSAGES, 10, error),
        hep=_hep_target(hep, error) if hep else None,
        hep_capture_id=_count(block, "hep_capture_id", DEFAULT_HEP_CAPTURE_ID, 0, error),
        hep_password=password,
    )


def _count(block: Mapping[str, Any], key: str, default: int, least: int, error: Error) -> int:
    value = block.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise error(f"inspector.{key}: {value!r} is not an integer of at least {least}")
    return value


def _hep_target(value: Any, error: Error) -> HepTarget:
    """``host:port``, ``[v6]:port`` or ``hep://host:port``."""
    text = str(value).removeprefix("hep://").removeprefix("hep:")
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise error(f"inspector.hep: {value!r} is not host:port (e.g. homer.example.com:9060)")
    return HepTarget(host, int(port))
