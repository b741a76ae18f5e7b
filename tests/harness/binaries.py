"""Where the peer programs live: the install-peers cache directory first, then PATH.

The cache directory holds the Go builds (livekit-server, lk) that no Debian package provides; the rest
come from apt. Both are put in place by ``scripts/install-peers``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PEER_PROGRAMS = ("livekit-server", "lk", "redis-server", "redis-cli", "sipp", "baresip")


def bin_dir() -> Path:
    """The cache directory scripts/install-peers builds into (``$SIPBRIDGE_BIN_DIR`` overrides it)."""
    configured = os.environ.get("SIPBRIDGE_BIN_DIR")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "sipbridge" / "bin"


def find_binary(name: str) -> Path | None:
    """Path of an executable `name`, or None when neither the cache directory nor PATH has it."""
    cached = bin_dir() / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    found = shutil.which(name)
    return Path(found) if found else None


def require_binary(name: str) -> Path:
    """Path of `name`; fails the test with the command that installs it when it is missing."""
    path = find_binary(name)
    if path is None:
        pytest.fail(
            f"peer program {name!r} not found in {bin_dir()} nor on PATH; "
            "install the test peers with `sudo scripts/install-peers` (set SIPBRIDGE_BIN_DIR if you "
            "built them elsewhere)",
            pytrace=False,
        )
    return path
