"""The Redis payloads: `internal.Msg` envelopes around psrpc's own messages, decoded only as the expected type."""

from __future__ import annotations

import logging

import pytest
from google.protobuf import any_pb2

from sipbridge.psrpc.wire import ClaimRequest, ClaimResponse, Msg, Request, Response, unwrap, wrap


def test_claim_request_bytes_are_those_of_the_spec() -> None:
    payload = wrap(ClaimRequest(request_id="REQ_abc", server_id="SRV_x", affinity=1.0))
    expected = (
        b"\x0a\x29type.googleapis.com/internal.ClaimRequest\x12\x15\x0a\x07REQ_abc\x12\x05SRV_x\x1d\x00\x00\x80\x3f"
    )
    assert payload == expected


def test_envelope_names_the_type_and_leaves_the_channel_empty() -> None:
    envelope = Msg.FromString(wrap(ClaimResponse(request_id="REQ_1", server_id="SRV_1")))
    assert envelope.type_url == "type.googleapis.com/internal.ClaimResponse"
    assert envelope.channel == ""


@pytest.mark.parametrize(
    "message",
    [
        Request(
            request_id="REQ_1",
            client_id="CLI_1",
            sent_at=1_700_000_000_000_000_000,
            expiry=1_700_000_003_000_000_000,
            metadata={"traceparent": "00-abc-def-01"},
            raw_request=b"\x0a\x01x",
        ),
        Response(
            request_id="REQ_1",
            server_id="SRV_1",
            sent_at=1_700_000_000_000_000_000,
            error="sip status: 486: Busy Here",
            code="resource_exhausted",
            error_details=[any_pb2.Any(type_url="type.googleapis.com/livekit.SIPStatus", value=b"\x08\xe6\x03")],
        ),
        Response(request_id="REQ_2", raw_response=b"\x0a\x04PA_1"),
        ClaimRequest(request_id="REQ_1", server_id="SRV_1", affinity=0.5),
        ClaimResponse(request_id="REQ_1", server_id="SRV_1"),
    ],
)
def test_round_trip(message: Request | Response | ClaimRequest | ClaimResponse) -> None:
    assert unwrap(wrap(message), type(message)) == message


def test_a_message_of_another_type_is_dropped_not_misread(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert unwrap(wrap(ClaimResponse(request_id="REQ_1")), ClaimRequest) is None
    assert "internal.ClaimResponse" in caplog.text


def test_garbage_is_dropped() -> None:
    assert unwrap(b"\xff\xff\xff", Request) is None
    good_envelope_bad_value = Msg(
        type_url="type.googleapis.com/internal.Request", value=b"\x0a\x05ab"
    ).SerializeToString()
    assert unwrap(good_envelope_bad_value, Request) is None


def test_legacy_any_payload_field_is_tolerated() -> None:
    # A peer still filling Request.request (field 6, an Any) is read; the field is kept as unknown.
    legacy = Request(request_id="REQ_1").SerializeToString() + b"\x32\x02\x0a\x00"
    envelope = Msg(type_url="type.googleapis.com/internal.Request", value=legacy).SerializeToString()
    request = unwrap(envelope, Request)
    assert request is not None and request.request_id == "REQ_1"
