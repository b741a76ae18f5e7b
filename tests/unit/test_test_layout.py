"""pytest imports test modules by basename (``rootdir``-relative, no packages under ``tests/``), so two test files
with one name fail the whole collection on a fresh clone. One name per test file keeps CI collecting."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_has_its_own_basename() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
