"""The seam between a call flow and its room: what every room transport does for one phone call.

A call is one LiveKit participant of kind SIP: the caller's audio out, everyone else's audio in, DTMF both ways,
`sip.callStatus` and other attributes, room RPC, and the reason the participant left. `RoomParticipant` is that
contract and the part every transport shares (endings, DTMF delivery, the context managers); the transports
themselves are `sipbridge.room.sdk_participant` (the livekit rtc SDK) and `sipbridge.room.lean` (aiortc for the
connection, media on sipbridge's own cadence). `sipbridge.room.transport.create_participant` picks one.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Mapping, MutableMapping
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, Unpack

from sipbridge.media.codecs import Pcm
from sipbridge.room.dtmf import dtmf_digit
from sipbridge.room.endings import EndReason
from sipbridge.room.processing import MediaProcessor
from sipbridge.room.rpc import RpcHandler
from sipbridge.room.sink import AudioSink
from sipbridge.room.token import LiveKitCredentials, ParticipantSpec

logger = logging.getLogger(__name__)

FRAME_MS = 20
"""Frame length in both directions."""

CALL_STATUS_ATTRIBUTE = "sip.callStatus"

CallStatus = Literal["dialing", "ringing", "automation", "active", "hangup"]
"""The values LiveKit documents for `sip.callStatus`."""

DtmfHandler = Callable[[str], None]


class RoomConnectError(Exception):
    """The participant could not join the room (server unreachable, token refused, publish failed)."""


class ParticipantLog(logging.LoggerAdapter[logging.Logger]):
    """Every line of a participant names its call, room and identity."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        ids = " ".join(f"{k}={v}" for k, v in extra.items() if v)
        return f"[{ids}] {msg}", kwargs


class ParticipantOptions(TypedDict, total=False):
    """How a participant is set up beyond who and where it is; every key is optional."""

    publish_rate: int
    """Rate of the frames `push()` takes (default 48000)."""
    subscribe_rate: int
    """Rate of the frames handed to the sink (default 48000)."""
    processor: MediaProcessor | None
    """Transforms the caller's audio before it is published (noise suppression); closed on leave."""
    on_dtmf: DtmfHandler | None
    """Gets the digits others publish towards the phone."""
    connect_timeout: float
    """Seconds `join()` may take (default 10)."""
    token: str
    """A join token minted elsewhere (livekit-server's, in cluster mode); empty: minted from the credentials."""
    call_id: str
    """The call's ID, for the logs."""


class RoomParticipant(abc.ABC):
    """A call's participant of kind SIP in one room.

    `join()` connects and publishes the caller's microphone track; from then on `push()` takes the caller's
    audio, and every remote audio track goes to `sink` as it is subscribed. Ended by `leave()` or by the room
    (see `wait_ended()`); when the room ends it, everything is released by itself, and `leave()` waits for that.
    Create it on the event loop that will run it.
    """

    def __init__(
        self,
        credentials: LiveKitCredentials,
        spec: ParticipantSpec,
        sink: AudioSink,
        **options: Unpack[ParticipantOptions],
    ) -> None:
        self.credentials = credentials
        self.spec = spec
        self.publish_rate = options.get("publish_rate", 48000)
        self.subscribe_rate = options.get("subscribe_rate", 48000)
        self._sink = sink
        self._processor = options.get("processor")
        self._on_dtmf = options.get("on_dtmf")
        self._connect_timeout = options.get("connect_timeout", 10.0)
        self._token = options.get("token", "")
        call_id = options.get("call_id", "")
        self.log = ParticipantLog(logger, {"callID": call_id, "room": spec.room, "identity": spec.identity})
        self._remote_audio = asyncio.Event()
        self._admitted = asyncio.Event()
        self._ended: asyncio.Future[EndReason] = asyncio.get_running_loop().create_future()
        self._unconfirmed: dict[str, str] = {}
        """Attributes we set that the server has not confirmed yet: set again once a lost connection is back."""

    # -- what each transport provides ------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def sid(self) -> str:
        """The participant ID the server gave us (empty before `join()`)."""

    @property
    @abc.abstractmethod
    def attributes(self) -> Mapping[str, str]:
        """Our attributes as the room knows them."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Whether we are in the room (joined, not yet left or ended)."""

    @abc.abstractmethod
    async def join(self) -> None:
        """Connects and publishes the caller's track; RoomConnectError (with nothing left allocated) on failure."""

    @abc.abstractmethod
    async def push(self, frame: Pcm) -> None:
        """Sends one frame of the caller's audio (mono int16 at `publish_rate`, 20 ms) through the processor.

        Waits only while frames come faster than real time. After the participant left, frames are dropped.
        """

    @abc.abstractmethod
    async def send_dtmf(self, digit: str) -> None:
        """Publishes one digit from the phone as SIP DTMF (agents see `sip_dtmf_received`)."""

    @abc.abstractmethod
    async def update_attributes(self, attributes: Mapping[str, str]) -> None:
        """Sets these attributes of ours, leaving the others as they are (an empty value removes one)."""

    @abc.abstractmethod
    def register_rpc(self, method: str, handler: RpcHandler) -> None:
        """Answers room RPC calls of `method` (another participant's `perform_rpc`) with `handler`.

        Calls of methods nobody registered are answered with LiveKit's "unsupported method" error."""

    @abc.abstractmethod
    async def leave(self) -> None:
        """Leaves the room (if still in it) and waits until everything the participant holds is released.
        Idempotent; safe after the room ended the call (which starts the release by itself)."""

    # -- shared by every transport ---------------------------------------------------------------------------

    async def set_call_status(self, status: CallStatus) -> None:
        await self.update_attributes({CALL_STATUS_ATTRIBUTE: status})

    async def wait_admitted(self) -> None:
        """Returns once the room has let us in: the server answered our join and the participant exists there.
        `join()` returns later, once the media connection is up too; a join the room refuses fails before this
        would return.

        The outbound flow dials at this moment: the callee rings while the media connection comes up.
        """
        await self._admitted.wait()

    async def wait_remote_audio(self) -> None:
        """Returns once a remote audio track has been subscribed (at once if one already was).

        The inbound flow answers the call at that moment: someone, typically the agent, is there to talk.
        """
        await self._remote_audio.wait()

    async def wait_ended(self) -> EndReason:
        """Returns why the participant left the room, once it has."""
        return await asyncio.shield(self._ended)

    @property
    def end_reason(self) -> EndReason | None:
        return self._ended.result() if self._ended.done() else None

    def _end(self, reason: EndReason) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)
            self.log.info("left the room: %s", reason.value)

    def _wanted_attributes(self, known: Mapping[str, str]) -> dict[str, str]:
        """`known` (a view of our attributes) with what we set and the server has not confirmed."""
        wanted = dict(known)
        for key, value in self._unconfirmed.items():
            if value:
                wanted[key] = value
            else:
                wanted.pop(key, None)
        return wanted

    def _confirmed(self, changes: Mapping[str, str]) -> None:
        """The server answered the update of `changes` (set, or refused for good)."""
        for key, value in changes.items():
            if self._unconfirmed.get(key) == value:
                del self._unconfirmed[key]

    def _deliver_dtmf(self, code: int, digit: str) -> None:
        """A SIP DTMF event another participant published: its digit goes to `on_dtmf`."""
        digit = dtmf_digit(code, digit)
        if not digit or self._on_dtmf is None:
            return
        try:
            self._on_dtmf(digit)
        except Exception:
            self.log.exception("DTMF handler failed on %r", digit)

    async def __aenter__(self) -> Self:
        await self.join()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.leave()
