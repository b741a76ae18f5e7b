"""Helpers the call benchmarks share: a bridge process's CPU and memory from /proc, percentiles, sipp's timestamps.

Not a benchmark itself. A bridge under test is started by the harness's ManagedProcess in a session of its own
(``start_new_session``), so "the bridge" here is every process of that session: the process and any child it
started, counted the same way whatever the bridge is written in.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
_SIPP_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state is [0], ppid [1], pgrp [2], session [3], utime [11]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def session_pids(leader: int) -> list[int]:
    """`leader` and every live process in its session (children a bridge started, e.g. helper processes)."""
    pids = [leader]
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == leader:
            continue
        try:
            if int(_stat_fields(int(entry.name))[3]) == leader:
                pids.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not readable
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and the rest of its session so far (children that exited and were
    reaped count through the leader's cutime/cstime)."""
    total = 0
    for member in session_pids(pid):
        try:
            fields = _stat_fields(member)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if member == pid:
            total += int(fields[13]) + int(fields[14])
    return total / CLOCK_TICKS


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of every thread of `pid` and the rest of its session, summed by thread name (threads of
    one pool share a name, e.g. tokio-runtime-worker); threads that already ended are not counted."""
    by_name: dict[str, float] = {}
    for member in session_pids(pid):
        try:
            tasks = list(os.scandir(f"/proc/{member}/task"))
        except OSError:
            continue
        for task in tasks:
            try:
                text = Path(task.path, "stat").read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return by_name


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and the rest of its session, in bytes."""
    total = 0
    for member in session_pids(pid):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total


def percentile(values: list[float], p: float) -> float:
    """The `p`th percentile by nearest rank; NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def sipp_events(messages: str) -> list[tuple[float, str, str]]:
    """(wall-clock time, "sent" or "received", first line) of every message in a sipp ``-trace_msg`` log."""
    events: list[tuple[float, str, str]] = []
    lines = messages.splitlines()
    for i, line in enumerate(lines):
        match = _SIPP_STAMP.match(line)
        if not match or i + 3 >= len(lines):
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        direction = "sent" if " sent " in lines[i + 1] else "received"
        first = next((text for text in lines[i + 2 : i + 5] if text.strip()), "")
        events.append((at, direction, first.strip()))
    return events


def sipp_first(messages: str, direction: str, start: str) -> float | None:
    """Time of the first message `direction` ("sent"/"received") whose first line starts with `start`
    (e.g. "INVITE", "SIP/2.0 200"), from a sipp message log; None if there is none."""
    for at, way, first in sipp_events(messages):
        if way == direction and first.startswith(start):
            return at
    return None
