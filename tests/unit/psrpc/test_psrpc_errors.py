"""Error codes and SIP statuses map as livekit-server maps them, so callers see the same Twirp errors."""

from __future__ import annotations

import base64

import pytest
from livekit.protocol.sip import SIPStatus

from sipbridge.psrpc.errors import (
    ErrorCode,
    GrpcCode,
    PsrpcError,
    RpcStatus,
    code_from_grpc,
    code_from_twirp,
    grpc_code,
    sip_status_code,
    twirp_code,
)

# The psrpc → gRPC table of the spec (§2.4).
PSRPC_TO_GRPC = {
    "canceled": 1,
    "unknown": 2,
    "invalid_argument": 3,
    "malformed_request": 3,
    "upstream_client_error": 3,
    "deadline_exceeded": 4,
    "not_found": 5,
    "already_exists": 6,
    "permission_denied": 7,
    "resource_exhausted": 8,
    "failed_precondition": 9,
    "aborted": 10,
    "out_of_range": 11,
    "unimplemented": 12,
    "internal": 13,
    "malformed_result": 13,
    "upstream_server_error": 13,
    "unavailable": 14,
    "data_loss": 15,
    "unauthenticated": 16,
    "not_acceptable": 2,
    "unprocessable_entity": 2,
    "something_new": 2,
    "": 2,
}


@pytest.mark.parametrize(("code", "grpc"), PSRPC_TO_GRPC.items())
def test_psrpc_to_grpc(code: str, grpc: int) -> None:
    assert grpc_code(code) == grpc


def test_every_psrpc_code_is_in_the_table() -> None:
    assert {code.value for code in ErrorCode} <= set(PSRPC_TO_GRPC)


def test_grpc_to_psrpc_is_the_inverse_for_namesakes() -> None:
    for grpc in GrpcCode:
        if grpc != GrpcCode.OK:
            assert grpc_code(code_from_grpc(grpc)) == grpc
    assert code_from_grpc(GrpcCode.CANCELED) == "canceled"


@pytest.mark.parametrize(
    ("code", "twirp"),
    [
        ("resource_exhausted", "resource_exhausted"),
        ("unavailable", "unavailable"),
        ("canceled", "canceled"),
        ("malformed_request", "invalid_argument"),  # through gRPC, as livekit-server converts
        ("malformed_result", "internal"),
        ("not_acceptable", "unknown"),
    ],
)
def test_psrpc_to_twirp(code: str, twirp: str) -> None:
    assert twirp_code(code) == twirp


@pytest.mark.parametrize(
    ("twirp", "code"),
    [
        ("not_found", "not_found"),
        ("canceled", "canceled"),
        ("malformed", "malformed_request"),
        ("bad_route", "unknown"),
        ("resource_exhausted", "resource_exhausted"),
    ],
)
def test_twirp_to_psrpc(twirp: str, code: str) -> None:
    assert code_from_twirp(twirp) == code


@pytest.mark.parametrize(
    ("sip", "code"),
    [
        (486, "resource_exhausted"),
        (480, "resource_exhausted"),
        (600, "resource_exhausted"),
        (404, "not_found"),
        (302, "not_found"),
        (403, "permission_denied"),
        (603, "permission_denied"),
        (407, "unauthenticated"),
        (408, "deadline_exceeded"),
        (504, "deadline_exceeded"),
        (487, "aborted"),
        (416, "out_of_range"),
        (503, "failed_precondition"),
        (488, "invalid_argument"),
        (499, "invalid_argument"),  # unlisted 4xx
        (599, "failed_precondition"),  # unlisted 5xx
        (699, "invalid_argument"),  # unlisted 6xx
        (180, "unknown"),  # not a failure
    ],
)
def test_sip_status_to_psrpc(sip: int, code: str) -> None:
    assert sip_status_code(sip) == code


def test_a_sip_failure_carries_the_status_as_its_one_detail() -> None:
    error = PsrpcError.from_sip_status(486, "Busy Here")
    assert error.code == "resource_exhausted"
    assert error.message == "sip status: 486: Busy Here"
    assert [detail.type_url for detail in error.details] == ["type.googleapis.com/livekit.SIPStatus"]
    assert error.sip_status == SIPStatus(code=486, status="Busy Here")  # type: ignore[arg-type]


def test_without_a_reason_phrase_the_enum_name_is_used() -> None:
    assert PsrpcError.from_sip_status(486).message == "sip status: 486 (BUSY_HERE)"
    assert PsrpcError.from_sip_status(499).message == "sip status: 499 (499)"
    assert PsrpcError.from_sip_status(486).twirp_meta()["sip_status"] == "SIP_STATUS_BUSY_HERE"


def test_twirp_meta_is_what_livekit_server_adds() -> None:
    error = PsrpcError.from_sip_status(486, "Busy Here", "INVITE failed: sip status: 486: Busy Here")
    meta = error.twirp_meta()
    assert meta["sip_status_code"] == "486"
    assert meta["sip_status"] == "Busy Here"
    status = RpcStatus.FromString(base64.b64decode(meta["error_details"]))
    assert status.code == GrpcCode.RESOURCE_EXHAUSTED
    assert status.message == "INVITE failed: sip status: 486: Busy Here"
    assert list(status.details) == error.details


def test_errors_without_details_have_no_meta() -> None:
    assert PsrpcError(ErrorCode.UNAVAILABLE, "no response from servers").twirp_meta() == {}


def test_an_empty_code_is_unknown() -> None:
    assert PsrpcError("", "boom").code == "unknown"
