"""FailureBudget: a burst of failures is allowed per source, then it refills; memory stays bounded."""

from __future__ import annotations

from sipbridge.failure_budget import FailureBudget


def test_burst_then_refill() -> None:
    budget = FailureBudget(burst=3, rate=1.0)
    for _ in range(3):
        assert not budget.exhausted("a", now=0.0)
        budget.spend("a", now=0.0)
    assert budget.exhausted("a", now=0.0)
    assert not budget.exhausted("b", now=0.0)  # other sources are not affected
    assert not budget.exhausted("a", now=1.0)  # one failure's worth came back after a second


def test_remembers_a_bounded_number_of_sources() -> None:
    budget = FailureBudget(burst=1, rate=0.0, max_sources=100)
    for i in range(10_000):
        budget.spend(f"s{i}", now=0.0)
    assert len(budget._left) == 100
    assert budget.exhausted("s9999", now=0.0) and not budget.exhausted("s0", now=0.0)
