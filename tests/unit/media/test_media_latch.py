"""RtpLatch: the SDP address or the caller's NAT port is followed once; strangers are never heard nor answered."""

from __future__ import annotations

from sipbridge.media.latch import LEARNING_WINDOW, RtpLatch

SDP = ("203.0.113.5", 4000)
SIP_HOST = "198.51.100.9"
STRANGER = ("192.0.2.66", 5555)


def test_before_any_packet_we_send_to_the_sdp_address_and_only_its_hosts_may_latch() -> None:
    latch = RtpLatch(SDP, 0.0, signalling_host=SIP_HOST)
    assert latch.destination == SDP
    assert not latch.admits(STRANGER, 0.1)
    assert latch.admits(("203.0.113.5", 4002), 0.1)  # the SDP host, another port: a NAT
    assert latch.admits((SIP_HOST, 30000), 0.1)  # the host the SIP came from
    assert latch.refused == 1


def test_a_nat_port_latches_once_and_strangers_stay_out() -> None:
    latch = RtpLatch(SDP, 0.0, signalling_host=SIP_HOST)
    nat = (SIP_HOST, 30000)
    assert latch.admits(nat, 0.1) and latch.confirm(nat, 0.1)
    assert latch.destination == nat
    for t in (0.2, 3.0, 60.0):  # however long the caller is silent
        assert not latch.admits(STRANGER, t)
        assert not latch.admits((SIP_HOST, 30002), t)  # not even another port of the same host
    assert latch.destination == nat


def test_the_exact_sdp_address_takes_over_from_a_weaker_latch() -> None:
    latch = RtpLatch(SDP, 0.0)
    same_host = ("203.0.113.5", 4100)
    assert latch.confirm(same_host, 0.1)
    assert latch.admits(SDP, 0.2) and latch.confirm(SDP, 0.2)
    assert latch.destination == SDP
    assert not latch.admits(same_host, 0.3)


def test_symmetric_rtp_lets_any_address_latch_only_early() -> None:
    early = RtpLatch(SDP, 0.0, learn_any=True)
    assert early.admits(STRANGER, 1.0) and early.confirm(STRANGER, 1.0)
    assert not early.admits(("192.0.2.77", 1), 1.5)  # latched: no second stranger
    late = RtpLatch(SDP, 0.0, learn_any=True)
    assert not late.admits(STRANGER, LEARNING_WINDOW + 0.1)


def test_rtcp_comes_from_the_latched_host() -> None:
    latch = RtpLatch(SDP, 0.0, signalling_host=SIP_HOST)
    assert latch.admits_rtcp((SIP_HOST, 1)) and not latch.admits_rtcp(STRANGER)
    latch.confirm(SDP, 0.1)
    assert latch.admits_rtcp((SDP[0], 4001)) and not latch.admits_rtcp((SIP_HOST, 1))
