"""The room side of the call flows without LiveKit: participants that keep what the flow did to them
(attributes over time, digits published, whether they left) and let the test act as the room (an agent
publishing audio, a participant removed, the room deleted, an agent's RPC or DTMF). They keep the contract of
`sipbridge.room.RoomParticipant` as `sipbridge.calls.seams.CallParticipant` states it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping

from changes import Changes

from sipbridge.media.codecs import Pcm
from sipbridge.room import (
    CALL_STATUS_ATTRIBUTE,
    AudioSink,
    CallStatus,
    EndReason,
    LiveKitCredentials,
    ParticipantSpec,
    RoomConnectError,
    RpcHandler,
    RpcInvocation,
)

_sids = itertools.count(1)


class FakeParticipant:
    def __init__(
        self,
        spec: ParticipantSpec,
        sink: AudioSink,
        *,
        credentials: LiveKitCredentials,
        rate: int,
        krisp_enabled: bool,
        on_dtmf: Callable[[str], None],
        token: str,
        call_id: str,
        refuse: bool,
        join_seconds: float = 0.0,
        media_fails: bool = False,
    ) -> None:
        self.spec = spec
        self.sink = sink
        self.credentials = credentials
        self.rate = rate
        self.krisp_enabled = krisp_enabled
        self.token = token
        self.call_id = call_id
        self._on_dtmf = on_dtmf
        self._refuse = refuse
        self._join_seconds = join_seconds
        self._media_fails = media_fails
        self.sid = ""
        self.attributes: dict[str, str] = dict(spec.attributes)
        self.statuses: list[str] = [spec.attributes.get(CALL_STATUS_ATTRIBUTE, "")]
        """``sip.callStatus`` as the room saw it change, from the join on."""
        self.dtmf_published: list[str] = []
        self.frames = 0
        self.rpc: dict[str, RpcHandler] = {}
        self.joined = False
        self.left = False
        self._remote_audio = asyncio.Event()
        self._admitted = asyncio.Event()
        self._ended: asyncio.Future[EndReason] = asyncio.get_running_loop().create_future()
        self.changes = Changes()

    @property
    def end_reason(self) -> EndReason | None:
        return self._ended.result() if self._ended.done() else None

    async def join(self) -> None:
        if self._refuse:
            raise RoomConnectError(f"room {self.spec.room!r}: the server refused the token")
        self._admitted.set()
        await asyncio.sleep(self._join_seconds)  # the media connection coming up
        if self._media_fails:
            raise RoomConnectError(f"room {self.spec.room!r}: ICE failed")
        self.joined = True
        self.sid = f"PA_fake{next(_sids)}"
        self.changes.notify()

    async def push(self, frame: Pcm) -> None:
        self.frames += 1
        self.changes.notify()

    async def send_dtmf(self, digit: str) -> None:
        self.dtmf_published.append(digit)
        self.changes.notify()

    async def set_call_status(self, status: CallStatus) -> None:
        await self.update_attributes({CALL_STATUS_ATTRIBUTE: status})

    async def update_attributes(self, attributes: Mapping[str, str]) -> None:
        if self.end_reason is not None:
            raise ConnectionError("not in the room")
        for key, value in attributes.items():
            if value:
                self.attributes[key] = value
            else:
                self.attributes.pop(key, None)
        if CALL_STATUS_ATTRIBUTE in attributes:
            self.statuses.append(attributes[CALL_STATUS_ATTRIBUTE])
        self.changes.notify()

    async def until_status(self, status: str) -> None:
        """Returns once ``sip.callStatus`` has been ``status``."""
        await self.changes.until(lambda: status in self.statuses)

    def register_rpc(self, method: str, handler: RpcHandler) -> None:
        self.rpc[method] = handler

    async def wait_admitted(self) -> None:
        await self._admitted.wait()

    async def wait_remote_audio(self) -> None:
        await self._remote_audio.wait()

    async def wait_ended(self) -> EndReason:
        return await asyncio.shield(self._ended)

    async def leave(self) -> None:
        self.left = True
        self._end(EndReason.LEFT)
        self.changes.notify()  # also when the room had ended it before

    # -- the room's side, for the tests ---------------------------------------------------------------------------

    def agent_publishes(self) -> None:
        """Someone's audio track is subscribed (an inbound call is answered now)."""
        self._remote_audio.set()

    def remove(self, reason: EndReason = EndReason.REMOVED) -> None:
        """The room ends our participant (removed, room deleted, connection lost...)."""
        self._end(reason)

    def agent_presses(self, digit: str) -> None:
        """An agent publishes a DTMF digit towards the phone."""
        self._on_dtmf(digit)

    async def perform_rpc(self, method: str, payload: str) -> str:
        """An agent's ``perform_rpc`` to our participant."""
        return await self.rpc[method](RpcInvocation("req-1", "agent", method, payload, 10.0))

    def _end(self, reason: EndReason) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)
            self.changes.notify()


class FakeRoom:
    """The `ParticipantFactory` of a node: makes fake participants and keeps them, newest last."""

    def __init__(self) -> None:
        self.participants: list[FakeParticipant] = []
        self.refuse_joins = False
        self.join_seconds = 0.0
        """How long a join takes (on the test's clock)."""
        self.media_fails = False
        """Joins are admitted, then their media connection fails."""
        self.changes = Changes()
        self._taken = 0

    async def until_joined(self) -> FakeParticipant:
        """The next participant to join (the first one not yet taken by this)."""
        taken = self._taken
        await self.changes.until(lambda: len(self.participants) > taken and self.participants[taken].joined)
        self._taken += 1
        return self.participants[taken]

    @property
    def last(self) -> FakeParticipant:
        return self.participants[-1]

    def __call__(
        self,
        spec: ParticipantSpec,
        sink: AudioSink,
        *,
        credentials: LiveKitCredentials,
        rate: int,
        krisp_enabled: bool,
        on_dtmf: Callable[[str], None],
        token: str,
        call_id: str,
    ) -> FakeParticipant:
        participant = FakeParticipant(
            spec, sink, credentials=credentials, rate=rate, krisp_enabled=krisp_enabled, on_dtmf=on_dtmf,
            token=token, call_id=call_id, refuse=self.refuse_joins, join_seconds=self.join_seconds,
            media_fails=self.media_fails,
        )  # fmt: skip
        participant.changes = self.changes  # one record of changes per room: a join wakes the room's waiters
        self.participants.append(participant)
        return participant
