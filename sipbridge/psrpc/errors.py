"""psrpc errors: the code strings on the wire, their gRPC and Twirp equivalents, and `livekit.SIPStatus` details.

A failed psrpc call carries ``(code, error text, details)``; livekit-server turns it into a Twirp error by way of
gRPC: psrpc code → gRPC code → Twirp code, and each `livekit.SIPStatus` detail becomes the Twirp meta
``sip_status_code`` / ``sip_status`` (plus ``error_details``, the base64 `google.rpc.Status`). A SIP failure is
therefore sent as the psrpc code LiveKit maps that SIP status to, with the `SIPStatus` as the only detail.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Iterable
from typing import Annotated

from google.protobuf import any_pb2
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.message import Message
from livekit.protocol.sip import SIPStatus, SIPStatusCode

from sipbridge.psrpc.schema import F, message
from sipbridge.psrpc.wire import TYPE_URL_PREFIX
from sipbridge.sip_failures import code_for_sip_status


class ErrorCode(enum.StrEnum):
    """psrpc's error codes as they appear in `Response.code`."""

    CANCELED = "canceled"
    MALFORMED_REQUEST = "malformed_request"
    MALFORMED_RESULT = "malformed_result"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    NOT_ACCEPTABLE = "not_acceptable"
    ALREADY_EXISTS = "already_exists"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    ABORTED = "aborted"
    OUT_OF_RANGE = "out_of_range"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"
    DATA_LOSS = "data_loss"
    UNAUTHENTICATED = "unauthenticated"
    UNPROCESSABLE_ENTITY = "unprocessable_entity"
    UPSTREAM_SERVER_ERROR = "upstream_server_error"
    UPSTREAM_CLIENT_ERROR = "upstream_client_error"


class GrpcCode(enum.IntEnum):
    """gRPC status codes, spelled as Go spells them (so that the names match psrpc's and Twirp's codes)."""

    OK = 0
    CANCELED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# The psrpc codes without a gRPC namesake; every other psrpc code maps to the gRPC code of its name.
_GRPC_OF_PSRPC = {
    ErrorCode.MALFORMED_REQUEST: GrpcCode.INVALID_ARGUMENT,
    ErrorCode.UPSTREAM_CLIENT_ERROR: GrpcCode.INVALID_ARGUMENT,
    ErrorCode.MALFORMED_RESULT: GrpcCode.INTERNAL,
    ErrorCode.UPSTREAM_SERVER_ERROR: GrpcCode.INTERNAL,
}


def grpc_code(code: str) -> GrpcCode:
    """The gRPC code of a psrpc code, as livekit-server converts it (unrecognised strings are UNKNOWN)."""
    if code in _GRPC_OF_PSRPC:
        return _GRPC_OF_PSRPC[ErrorCode(code)]
    grpc = GrpcCode.__members__.get(code.upper(), GrpcCode.UNKNOWN)
    return GrpcCode.UNKNOWN if grpc == GrpcCode.OK else grpc


def code_from_grpc(code: GrpcCode) -> ErrorCode:
    """The psrpc code of a gRPC code; OK is not an error, so it has none and becomes unknown."""
    return ErrorCode.UNKNOWN if code == GrpcCode.OK else ErrorCode(code.name.lower())


def twirp_code(code: str) -> str:
    """The Twirp code livekit-server answers for a psrpc code: the name of its gRPC code."""
    return grpc_code(code).name.lower()


def code_from_twirp(code: str) -> ErrorCode:
    """The psrpc code for a Twirp code: its namesake, malformed_request for ``malformed``, else unknown."""
    if code == "malformed":
        return ErrorCode.MALFORMED_REQUEST
    return ErrorCode(code) if twirp_code(code) == code else ErrorCode.UNKNOWN


def sip_status_code(sip_code: int) -> ErrorCode:
    """The psrpc code LiveKit sends for a failed call's final SIP status (486 → resource_exhausted)."""
    return ErrorCode(code_for_sip_status(sip_code))


def sip_status_text(status: SIPStatus) -> str:
    """How LiveKit words a SIP status as an error: ``sip status: 486: Busy Here`` (enum name without a reason)."""
    if status.status:
        return f"sip status: {status.code}: {status.status}"
    return f"sip status: {status.code} ({_sip_code_name(status.code).removeprefix('SIP_STATUS_')})"


def _sip_code_name(code: int) -> str:
    """The `SIPStatusCode` name of a code, or its digits for codes the enum does not list (as Go prints them)."""
    try:
        return SIPStatusCode.Name(code)
    except ValueError:
        return str(code)


@message("sipbridge.psrpc")
class RpcStatus(Message):
    """Wire-identical to `google.rpc.Status` (not installed here), for the Twirp ``error_details`` meta."""

    code: Annotated[int, F(1, kind="int32")]
    message: Annotated[str, F(2)]
    details: Annotated[RepeatedCompositeFieldContainer[any_pb2.Any], F(3)]


class PsrpcError(Exception):
    """A psrpc call failed: `code` (a psrpc code string), the error text, and detail messages as `Any`s."""

    def __init__(self, code: str, message: str, details: Iterable[any_pb2.Any] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code or ErrorCode.UNKNOWN
        self.message = message
        self.details = list(details)

    @classmethod
    def with_details(cls, code: str, message: str, *details: Message) -> PsrpcError:
        """An error whose details are the given messages, packed as `Any` (``type.googleapis.com/<name>``)."""
        packed = [_pack(detail) for detail in details]
        return cls(code, message, packed)

    @classmethod
    def from_sip_status(cls, code: int, status: str = "", text: str | None = None, context: str = "") -> PsrpcError:
        """A call failed with a final SIP status: LiveKit's psrpc code for it, and the `SIPStatus` as detail.

        `text` defaults to LiveKit's wording (`context` then ``sip status: 486: Busy Here``).
        """
        detail = SIPStatus(code=code, status=status)  # type: ignore[arg-type]  # any int is a valid open enum
        return cls.with_details(sip_status_code(code), text or context + sip_status_text(detail), detail)

    @classmethod
    def from_failure(
        cls, code: str, message: str, sip_status: int | None, sip_reason: str, *, worded: bool = True,
        context: str = "",
    ) -> PsrpcError:  # fmt: skip
        """The error for a failed operation: with a final SIP status as LiveKit sends that (worded as LiveKit
        words it, after `context`, unless `worded`), else `code` itself."""
        if sip_status is not None:
            return cls.from_sip_status(sip_status, sip_reason, message if worded else None, context)
        return cls(code, message)

    @property
    def sip_status(self) -> SIPStatus | None:
        """The first `livekit.SIPStatus` detail, if any."""
        for detail in self.details:
            if detail.type_url == TYPE_URL_PREFIX + SIPStatus.DESCRIPTOR.full_name:
                return SIPStatus.FromString(detail.value)
        return None

    def twirp_code(self) -> str:
        return twirp_code(self.code)

    def twirp_meta(self) -> dict[str, str]:
        """The Twirp error meta livekit-server adds for this error's details (empty without details)."""
        if not self.details:
            return {}
        meta: dict[str, str] = {}
        status = self.sip_status
        if status is not None:
            meta["sip_status_code"] = str(status.code)
            meta["sip_status"] = status.status or _sip_code_name(status.code)
        rpc_status = RpcStatus(code=grpc_code(self.code), message=self.message, details=self.details)
        meta["error_details"] = base64.b64encode(rpc_status.SerializeToString()).decode()
        return meta


def _pack(detail: Message) -> any_pb2.Any:
    return any_pb2.Any(type_url=TYPE_URL_PREFIX + detail.DESCRIPTOR.full_name, value=detail.SerializeToString())
