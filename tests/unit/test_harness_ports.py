"""harness.ports: ports below the ephemeral range, not the same twice before the walk goes round, never running out."""

from __future__ import annotations

from harness.ports import free_tcp_udp_port, free_udp_range


def test_a_run_may_ask_for_more_ranges_than_the_range_holds() -> None:
    blocks = (32000 - 20000) // 100
    starts = [free_udp_range(100) for _ in range(blocks + 50)]  # more 100-port ranges than fit, as a full run asks
    assert all(start >= 20000 and start + 100 <= 32000 for start in starts)


def test_recent_ports_are_not_handed_out_again() -> None:
    recent = [free_udp_range(100) for _ in range(30)]
    handed = {start + offset for start in recent for offset in range(100)}
    assert len(handed) == len(recent) * 100  # no two ranges overlap
    assert free_tcp_udp_port() not in handed
