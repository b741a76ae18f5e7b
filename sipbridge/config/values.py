"""Readers for single config.yaml values, written the Go service's way: strings, booleans, ports, port ranges,
IP addresses, durations, lists, fractions, network masks.

Each takes the mapping the key sits in (or the value itself), checks it and raises `ConfigError` with a message
that starts with the key, so that every block of the file reads its values the same way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .model import PortRange

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def string(raw: Mapping[str, Any], key: str) -> str:
    """A string, "" when unset; a number is taken as its text (YAML reads ``cluster_id: 42`` as one)."""
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError(f"{key}: must be a string, not {type(value).__name__}")
    return str(value)


def boolean(raw: Mapping[str, Any], key: str) -> bool:
    """true or false, false when unset."""
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false, not {value!r}")
    return value


def port(raw: Mapping[str, Any], key: str, default: int) -> int:
    """A port number, 0 to 65535."""
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ConfigError(f"{key}: {value!r} is not a port number (0-65535)")
    return value


def port_range(value: Any) -> PortRange:
    """Parse ``rtp_port`` the ways the Go service accepts it: "10000-20000", a single port, or {start, end}."""
    if value is None:
        return PortRange(10000, 20000)
    try:
        if isinstance(value, dict):
            start, end = int(value["start"]), int(value["end"])
        elif isinstance(value, int) and not isinstance(value, bool):
            start = end = value
        elif isinstance(value, str) and "-" in value:
            a, b = value.split("-", 1)
            start, end = int(a), int(b)
        elif isinstance(value, str):
            start = end = int(value)
        else:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"rtp_port: {value!r} is not a port range like 10000-20000") from None
    if not (1 <= start <= 65535 and 1 <= end <= 65535):
        raise ConfigError(f"rtp_port: {start}-{end} is outside 1-65535")
    if start > end:
        raise ConfigError(f"rtp_port: range {start}-{end} is empty (the start must not exceed the end)")
    return PortRange(start, end)


def ip_address(value: str, key: str) -> None:
    """Raises unless ``value`` is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not an IP address") from None


def duration(raw: Mapping[str, Any], key: str, default: float) -> float:
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
    raise ConfigError(f"{key}: {value!r} is not a duration like 15s, 1m30s or 500ms")


def string_list(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{key}: must be a list of strings")
    return tuple(value)


def fraction(raw: Mapping[str, Any], key: str, default: float) -> float:
    """A share in (0, 1]; like the Go service, 0 or a value out of range means the default."""
    value = raw.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"{key}: {value!r} is not a number between 0 and 1")
    return float(value) if 0 < value <= 1 else default


def network(raw: Mapping[str, Any], key: str) -> str:
    """A CIDR block such as ``192.168.0.0/24``, or "" when unset."""
    value = raw.get(key)
    if value in (None, ""):
        return ""
    try:
        return str(ipaddress.ip_network(str(value), strict=False))
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not a network like 192.168.0.0/24") from None
