"""Port allocation from the rtp_port range, and SDES key material."""

from __future__ import annotations

import base64
import itertools

import pytest

from sipbridge.media.ports import PortAllocator, PortsExhausted
from sipbridge.media.srtp import SrtpContext, SrtpError, SrtpKeys, decode_inline_key, new_inline_key


def test_every_even_port_until_exhausted_then_reused_after_release() -> None:
    ports = PortAllocator(10001, 10010)  # pairs 10002/3, 10004/5, 10006/7, 10008/9
    taken = [ports.allocate() for _ in range(4)]
    assert sorted(taken) == [10002, 10004, 10006, 10008]
    with pytest.raises(PortsExhausted):
        ports.allocate()
    ports.release(10004)
    assert ports.allocate() == 10004  # the only free pair, even while it cools off
    for port in taken:
        ports.release(port)
        ports.release(port)  # twice is harmless
    assert ports.in_use == 0
    assert sorted(ports.allocate() for _ in range(4)) == [10002, 10004, 10006, 10008]


def test_ports_are_unpredictable_and_a_released_port_cools_off() -> None:
    ports = PortAllocator(20000, 30000)
    first = [ports.allocate() for _ in range(200)]
    assert sorted(first) != first and len(set(first)) == 200  # not handed out in order
    gaps = {b - a for a, b in itertools.pairwise(first)}
    assert len(gaps) > 100  # no fixed stride to guess the next one from
    released = first[0]
    ports.release(released)
    rest = [ports.allocate() for _ in range(ports.capacity - 200)]  # every pair never handed out so far
    assert released not in rest  # a recently released pair waits while others are free
    assert ports.allocate() == released


def test_a_range_without_a_pair_is_refused() -> None:
    with pytest.raises(ValueError):
        PortAllocator(10001, 10001)


def test_inline_keys_are_thirty_random_bytes() -> None:
    key = new_inline_key()
    assert len(base64.b64decode(key)) == 30 and key != new_inline_key()
    assert decode_inline_key(f"inline:{key}|2^20|1:4") == base64.b64decode(key)
    with pytest.raises(SrtpError):
        decode_inline_key("inline:c2hvcnQ=")
    with pytest.raises(SrtpError):
        decode_inline_key("inline:not base64!")
    with pytest.raises(SrtpError):
        SrtpContext(SrtpKeys("F8_128_HMAC_SHA1_80", key, key))


def test_32_bit_tag_suite_protects_too() -> None:
    a_key, b_key = new_inline_key(), new_inline_key()
    a = SrtpContext(SrtpKeys("AES_CM_128_HMAC_SHA1_32", a_key, b_key))
    b = SrtpContext(SrtpKeys("AES_CM_128_HMAC_SHA1_32", b_key, a_key))
    rtp = bytes([0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7]) + b"\xff" * 160
    protected = a.protect(rtp)
    assert len(protected) == len(rtp) + 4
    assert b.unprotect(protected) == rtp
