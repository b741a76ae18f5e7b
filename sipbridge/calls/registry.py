"""The node's calls in progress, found by LiveKit call ID or by room and identity (for transfers).

A front that routes requests to the node holding a call (the cluster mode's per-call psrpc topic) subscribes with
`on_change` to learn when calls come and go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TransferDone:
    """A transfer the transferee accepted: its ID, and the final status the transferor's NOTIFY reported."""

    transfer_id: str
    sip_status: int
    sip_reason: str


class ActiveCall(Protocol):
    lk_call_id: str

    @property
    def room_name(self) -> str: ...

    @property
    def identity(self) -> str: ...

    async def transfer(
        self, target: str, *, play_dialtone: bool, headers: Mapping[str, str], within: float
    ) -> TransferDone: ...


CallWatcher = Callable[[ActiveCall, bool], None]
"""Called with a call and True when it is added, False when it is removed."""


class CallRegistry:
    def __init__(self) -> None:
        self._by_id: dict[str, ActiveCall] = {}
        self._watchers: list[CallWatcher] = []

    def add(self, call: ActiveCall) -> None:
        if call.lk_call_id not in self._by_id:
            self._by_id[call.lk_call_id] = call
            for watch in self._watchers:
                watch(call, True)

    def discard(self, call: ActiveCall) -> None:
        if self._by_id.pop(call.lk_call_id, None) is not None:
            for watch in self._watchers:
                watch(call, False)

    def on_change(self, watcher: CallWatcher) -> None:
        self._watchers.append(watcher)

    def by_call_id(self, lk_call_id: str) -> ActiveCall | None:
        return self._by_id.get(lk_call_id)

    def by_participant(self, room: str, identity: str) -> ActiveCall | None:
        for call in self._by_id.values():
            if call.room_name == room and call.identity == identity:
                return call
        return None

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[ActiveCall]:
        return iter(list(self._by_id.values()))
