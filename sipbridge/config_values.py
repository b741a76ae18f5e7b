"""Readers for config.yaml values written the Go service's way: durations, lists, fractions, network masks.

Each raises sipbridge.config's error type through the ``error`` it is given, with a message that starts with the key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

Error = Callable[[str], Exception]


def duration(raw: Mapping[str, Any], key: str, default: float, error: Error) -> float:
    """A Go ``time.Duration`` in seconds: a string like ``15s``, ``1m30s`` or ``500ms``, or an integer number of
    nanoseconds (what Go's YAML decoder makes of a bare number)."""
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value / 1e9
    if isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text.replace(" ", ""):
            return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    raise error(f"{key}: {value!r} is not a duration like 15s, 1m30s or 500ms")


def string_list(raw: Mapping[str, Any], key: str, error: Error) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise error(f"{key}: must be a list of strings")
    return tuple(value)


def fraction(raw: Mapping[str, Any], key: str, default: float, error: Error) -> float:
    """A share in (0, 1]; like the Go service, 0 or a value out of range means the default."""
    value = raw.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise error(f"{key}: {value!r} is not a number between 0 and 1")
    return float(value) if 0 < value <= 1 else default


def network(raw: Mapping[str, Any], key: str, error: Error) -> str:
    """A CIDR block such as ``192.168.0.0/24``, or "" when unset."""
    value = raw.get(key)
    if value in (None, ""):
        return ""
    try:
        return str(ipaddress.ip_network(str(value), strict=False))
    except ValueError:
        raise error(f"{key}: {value!r} is not a network like 192.168.0.0/24") from None
