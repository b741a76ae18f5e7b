"""Unique, readable names, so tests sharing one server never meet in the same room."""

from __future__ import annotations

import re
import uuid


def unique_room_name(label: str) -> str:
    """`label` cut down to a safe 40 characters, plus a random suffix."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-")[:40] or "room"
    return f"{readable}-{uuid.uuid4().hex[:8]}"
