"""The STUN Binding codec: our transaction only, XOR-MAPPED-ADDRESS decoding."""

from __future__ import annotations

from sipbridge.sip.stun import binding_request, parse_binding_response


def test_codec_rejects_foreign_or_short_responses() -> None:
    tid = b"0123456789ab"
    assert binding_request(tid)[:2] == b"\x00\x01"
    assert parse_binding_response(b"\x01\x01" + b"\x00" * 10, tid) is None
    other = bytes.fromhex("0101000c2112a442") + b"ba9876543210" + bytes.fromhex("0020000800019ea55e12a443")
    assert parse_binding_response(other, tid) is None  # another transaction
    mine = bytes.fromhex("0101000c2112a442") + tid + bytes.fromhex("0020000800019ea55e12a443")
    assert parse_binding_response(mine, tid) == ("127.0.0.1", 0x9EA5 ^ 0x2112)
