"""The Go service's metrics as a dashboard reads them: exact names (no ``_total`` added), labels, node_id, how
calls count, and the terminations for carrier refusals."""

from __future__ import annotations

import re

from sipbridge.stats import Stats, client_error, refused_by_peer, status_label, success

GO_COUNTERS = {
    "livekit_sip_invite_requests_raw", "livekit_sip_invite_requests", "livekit_sip_invite_accepted",
    "livekit_sip_invite_error", "livekit_sip_calls_terminated", "livekit_sip_packets_rtp",
    "livekit_sip_sdp_parsed_total", "livekit_sip_codec_offered_total", "livekit_sip_transfers_total",
    "livekit_sip_transfers_succeeded_total", "livekit_sip_transfers_failed_total",
}  # fmt: skip
GO_GAUGES_AND_HISTOGRAMS = {
    "livekit_sip_calls_active", "livekit_sip_transfers_active", "livekit_sip_available", "livekit_node_cpu_load",
    "livekit_sip_dur_session_sec", "livekit_sip_dur_call_sec", "livekit_sip_dur_check_sec", "livekit_sip_dur_join_sec",
    "livekit_sip_stage_dur_sec", "livekit_sip_sdp_size_bytes",
}  # fmt: skip


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Each sample line as written (prometheus_client's own parser renames counters to ``..._total``)."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
            unescaped = {(k, v.replace(r"\n", "\n").replace(r"\"", '"').replace("\\\\", "\\")) for k, v in pairs}
            found[(name, frozenset(unescaped))] = float(value)
    return found


def test_every_go_metric_is_exposed_under_its_own_name() -> None:
    stats = Stats("NE_test")
    stats.watch(lambda: True, lambda: 0.25)
    text = stats.exposition().decode()
    typed = {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE")}
    assert {name for name, kind in typed.items() if kind == "counter"} == GO_COUNTERS
    assert set(typed) >= GO_GAUGES_AND_HISTOGRAMS
    values = samples(text)
    assert values[("livekit_sip_available", frozenset({("node_id", "NE_test")}))] == 1.0
    assert values[("livekit_node_cpu_load", frozenset({("node_id", "NE_test"), ("node_type", "SIP")}))] == 0.25


def test_a_call_counts_as_the_go_service_counts_it() -> None:
    stats = Stats("NE_a")
    call = stats.call("in", "sip.example.com")
    packets = {("recv", "PCMU"): 10, ("send", "PCMU"): 12}
    call.invite_received()
    call.checked()
    call.accepted()
    call.started(lambda: packets)
    live = samples(stats.exposition().decode())
    node_dir_to = {("node_id", "NE_a"), ("dir", "in"), ("to", "sip.example.com")}
    assert live[("livekit_sip_calls_active", frozenset(node_dir_to))] == 1
    recv = frozenset(node_dir_to | {("op", "recv"), ("payload", "PCMU")})
    assert live[("livekit_sip_packets_rtp", recv)] == 10  # read from the live call at scrape time
    packets[("recv", "PCMU")] = 60
    call.ended(success("hangup"))
    call.ended(success("hangup"))  # once in effect
    done = samples(stats.exposition().decode())
    assert done[("livekit_sip_calls_active", frozenset(node_dir_to))] == 0
    assert done[("livekit_sip_packets_rtp", recv)] == 60  # folded in at the end, not counted twice
    terminated = frozenset(node_dir_to | {("result", "success"), ("reason", "hangup")})
    assert done[("livekit_sip_calls_terminated", terminated)] == 1
    assert done[("livekit_sip_invite_requests_raw", frozenset({("node_id", "NE_a")}))] == 1
    assert done[("livekit_sip_invite_accepted", frozenset(node_dir_to))] == 1
    assert done[("livekit_sip_dur_session_sec_count", frozenset({("node_id", "NE_a"), ("dir", "in")}))] == 1


def test_a_refused_invite_is_an_error_and_a_termination_to_unknown() -> None:
    stats = Stats("NE_b")
    call = stats.call("in", "trunk.example")
    call.invite_received()
    call.refused(client_error("no-trunk"))
    call.ended(client_error("no-trunk"))
    values = samples(stats.exposition().decode())
    labels = {("node_id", "NE_b"), ("dir", "in"), ("to", "unknown")}
    assert values[("livekit_sip_invite_error", frozenset(labels | {("reason", "no-trunk")}))] == 1
    terminated = frozenset(labels | {("result", "client_error"), ("reason", "no-trunk")})
    assert values[("livekit_sip_calls_terminated", terminated)] == 1


def test_carrier_refusals_are_sorted_as_the_go_service_sorts_them() -> None:
    assert refused_by_peer(486, "Busy Here") == client_error("busy")
    assert refused_by_peer(404, "") == client_error("not-found")
    assert refused_by_peer(415, "") == client_error("client-error-415")
    assert refused_by_peer(503, "CPS limit exceeded") == client_error("cps-limit-exceeded")
    assert refused_by_peer(503, "Service Unavailable").result == "upstream_error"
    assert refused_by_peer(603, "Decline") == client_error("global-decline-603")
    assert status_label(486, "Busy Here") == "486-BusyHere"
    assert status_label(599, "") == "status-599"


def test_label_values_are_escaped() -> None:
    stats = Stats('NE_"q"')
    stats.transfer_started("out")
    stats.transfer_ended("out", 'bad "reason"\nhere')
    values = samples(stats.exposition().decode())
    key = frozenset({("node_id", 'NE_"q"'), ("dir", "out"), ("reason", 'bad "reason"\nhere')})
    assert values[("livekit_sip_transfers_failed_total", key)] == 1
