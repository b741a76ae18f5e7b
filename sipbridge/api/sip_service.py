"""The ``livekit.SIP`` Twirp service: trunks, dispatch rules and calls, as livekit-server serves them.

Each method checks the caller's grant, validates the request through `dispatch` (field checks and the conflict
checks over the whole set after the change), and reads or writes the `SIPStore`; the call methods hand a plan to the
node's `CallControl`. Errors carry Twirp codes and name the field or the objects at fault; a failed call carries the
SIP status in the error's metadata (``sip_status_code``, ``sip_status``), as LiveKit's does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from google.protobuf.message import Message
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    CreateSIPOutboundTrunkRequest,
    CreateSIPParticipantRequest,
    CreateSIPTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    GetSIPInboundTrunkRequest,
    GetSIPInboundTrunkResponse,
    GetSIPOutboundTrunkRequest,
    GetSIPOutboundTrunkResponse,
    ListSIPDispatchRuleRequest,
    ListSIPDispatchRuleResponse,
    ListSIPInboundTrunkRequest,
    ListSIPInboundTrunkResponse,
    ListSIPOutboundTrunkRequest,
    ListSIPOutboundTrunkResponse,
    ListSIPTrunkRequest,
    ListSIPTrunkResponse,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPOutboundTrunkInfo,
    SIPParticipantInfo,
    SIPStatus,
    SIPTransferReason,
    SIPTransferStatus,
    SIPTrunkInfo,
    TransferSIPParticipantRequest,
    TransferSIPParticipantResponse,
    UpdateSIPDispatchRuleRequest,
    UpdateSIPInboundTrunkRequest,
    UpdateSIPOutboundTrunkRequest,
)

from dispatch.errors import DispatchError, ValidationError
from dispatch.legacy import inbound_to_legacy, legacy_to_inbound, outbound_to_legacy
from dispatch.outbound import plan_outbound_call, transfer_timeout, validate_transfer_request
from dispatch.validate import (
    rule_conflict,
    trunk_conflict,
    validate_dispatch_rule,
    validate_inbound_trunk,
    validate_outbound_trunk,
)
from sipbridge.api import listing, updates
from sipbridge.api.auth import Authenticator, Grant
from sipbridge.api.twirp import MAX_BODY, Method, TwirpError, TwirpService
from sipbridge.calls.control import CallControl
from sipbridge.calls.errors import CallError
from sipbridge.ids import SIP_CALL_PREFIX, SIP_DISPATCH_RULE_PREFIX, SIP_TRUNK_PREFIX, new_id
from sipbridge.psrpc.errors import PsrpcError
from sipbridge.store import SIPStore, StoreError

R = TypeVar("R", bound=Message)
TRUNK_NOT_FOUND = "requested sip trunk does not exist"
RULE_NOT_FOUND = "requested sip dispatch rule does not exist"


class SIPService:
    def __init__(
        self, store: SIPStore, auth: Authenticator, *, calls: CallControl | None = None, max_body: int = MAX_BODY
    ) -> None:
        self.store = store
        self.auth = auth
        self.max_body = max_body
        self.calls = calls
        """The node's calls; without them (trunk and rule management only) the call methods answer
        ``unavailable``."""
        # One writer at a time, so two concurrent creates cannot both pass the conflict check.
        self._write_lock = asyncio.Lock()

    def twirp(self) -> TwirpService:
        admin, call = Grant.ADMIN, Grant.CALL
        table: list[tuple[str, type[Message], Grant, Callable[[Any], Awaitable[Message]]]] = [
            ("CreateSIPTrunk", CreateSIPTrunkRequest, admin, self.create_legacy_trunk),
            ("ListSIPTrunk", ListSIPTrunkRequest, admin, self.list_legacy_trunks),
            ("DeleteSIPTrunk", DeleteSIPTrunkRequest, admin, self.delete_trunk),
            ("CreateSIPInboundTrunk", CreateSIPInboundTrunkRequest, admin, self.create_inbound_trunk),
            ("CreateSIPOutboundTrunk", CreateSIPOutboundTrunkRequest, admin, self.create_outbound_trunk),
            ("UpdateSIPInboundTrunk", UpdateSIPInboundTrunkRequest, admin, self.update_inbound_trunk),
            ("UpdateSIPOutboundTrunk", UpdateSIPOutboundTrunkRequest, admin, self.update_outbound_trunk),
            ("GetSIPInboundTrunk", GetSIPInboundTrunkRequest, admin, self.get_inbound_trunk),
            ("GetSIPOutboundTrunk", GetSIPOutboundTrunkRequest, admin, self.get_outbound_trunk),
            ("ListSIPInboundTrunk", ListSIPInboundTrunkRequest, admin, self.list_inbound_trunks),
            ("ListSIPOutboundTrunk", ListSIPOutboundTrunkRequest, admin, self.list_outbound_trunks),
            ("CreateSIPDispatchRule", CreateSIPDispatchRuleRequest, admin, self.create_dispatch_rule),
            ("UpdateSIPDispatchRule", UpdateSIPDispatchRuleRequest, admin, self.update_dispatch_rule),
            ("ListSIPDispatchRule", ListSIPDispatchRuleRequest, admin, self.list_dispatch_rules),
            ("DeleteSIPDispatchRule", DeleteSIPDispatchRuleRequest, admin, self.delete_dispatch_rule),
            ("CreateSIPParticipant", CreateSIPParticipantRequest, call, self.create_participant),
            ("TransferSIPParticipant", TransferSIPParticipantRequest, call, self.transfer_participant),
        ]
        methods = [Method(n, t, self._translated(h), self._authorizer(g)) for n, t, g, h in table]
        return TwirpService("livekit.SIP", methods, max_body=self.max_body)

    def _authorizer(self, grant: Grant) -> Callable[[web.Request], None]:
        def authorize(request: web.Request) -> None:
            self.auth.require(request.headers.get("Authorization"), grant)

        return authorize

    def _translated(
        self, handler: Callable[[Any], Awaitable[Message]]
    ) -> Callable[[Any, web.Request], Awaitable[Message]]:
        """Run the handler with dispatch, call and store errors turned into Twirp errors."""

        async def run(message: Any, request: web.Request) -> Message:
            try:
                await self.store.catch_up()  # what another writer (livekit-server, a node) just did is seen
                return await handler(message)
            except DispatchError as e:
                raise TwirpError(e.code, e.message) from e
            except CallError as e:
                failure = PsrpcError.from_failure(
                    e.code, e.message, e.sip_status, e.sip_reason, worded=e.worded, context=e.context
                )
                raise TwirpError(failure.twirp_code(), failure.message, failure.twirp_meta()) from e
            except StoreError as e:
                raise TwirpError("unavailable", f"storage unavailable: {e}") from e

        return run

    def _check_trunk(self, trunk: SIPInboundTrunkInfo) -> None:
        """Refuse a trunk (new, or changed: its ID excludes itself) that competes with a stored one for calls;
        the store's index finds the candidates, so the cost does not grow with the store."""
        other = self.store.inbound.conflict(trunk)
        if other is not None:
            raise trunk_conflict(other, trunk)

    def _check_rule(self, rule: SIPDispatchRuleInfo) -> None:
        other = self.store.rules.conflict(rule)
        if other is not None:
            raise rule_conflict(other, rule)

    # Legacy trunks ----------------------------------------------------------------------------------------------

    async def create_legacy_trunk(self, req: CreateSIPTrunkRequest) -> SIPTrunkInfo:
        if req.inbound_numbers_regex:
            raise ValidationError(
                "inbound_numbers_regex: trunks with InboundNumbersRegex are deprecated, use inbound_numbers"
            )
        info = SIPTrunkInfo(
            inbound_addresses=req.inbound_addresses,
            outbound_address=req.outbound_address,
            outbound_number=req.outbound_number,
            inbound_numbers=req.inbound_numbers,
            inbound_username=req.inbound_username,
            inbound_password=req.inbound_password,
            outbound_username=req.outbound_username,
            outbound_password=req.outbound_password,
            name=req.name,
            metadata=req.metadata,
        )
        async with self._write_lock:
            self._check_trunk(legacy_to_inbound(info))
            info.sip_trunk_id = new_id(SIP_TRUNK_PREFIX)
            await self.store.put_legacy_trunk(info)
        return info

    async def list_legacy_trunks(self, req: ListSIPTrunkRequest) -> ListSIPTrunkResponse:
        items: list[SIPTrunkInfo] = [
            *self.store.legacy_trunks(),
            *(inbound_to_legacy(t) for t in self.store.inbound_trunks(with_legacy=False)),
            *(outbound_to_legacy(t) for t in self.store.outbound_trunks(with_legacy=False)),
        ]
        page = req.page if req.HasField("page") else None
        listed = listing.paged(sorted(items, key=lambda t: t.sip_trunk_id), page, lambda t: t.sip_trunk_id)
        return ListSIPTrunkResponse(items=listed)

    async def delete_trunk(self, req: DeleteSIPTrunkRequest) -> SIPTrunkInfo:
        _require("sip_trunk_id", req.sip_trunk_id)
        async with self._write_lock:
            if not await self.store.delete_trunk(req.sip_trunk_id):
                raise TwirpError("not_found", f"{TRUNK_NOT_FOUND}: {req.sip_trunk_id}")
        return SIPTrunkInfo(sip_trunk_id=req.sip_trunk_id)

    # Inbound trunks ---------------------------------------------------------------------------------------------

    async def create_inbound_trunk(self, req: CreateSIPInboundTrunkRequest) -> SIPInboundTrunkInfo:
        info: SIPInboundTrunkInfo = _new_trunk(req)
        validate_inbound_trunk(info)
        async with self._write_lock:
            self._check_trunk(info)
            info.sip_trunk_id = new_id(SIP_TRUNK_PREFIX)
            _stamp(info, created=True)
            await self.store.put_inbound_trunk(info)
        return info

    async def get_inbound_trunk(self, req: GetSIPInboundTrunkRequest) -> GetSIPInboundTrunkResponse:
        _require("sip_trunk_id", req.sip_trunk_id)
        return GetSIPInboundTrunkResponse(
            trunk=_found(await self.store.get_inbound_trunk(req.sip_trunk_id), TRUNK_NOT_FOUND, req.sip_trunk_id)
        )

    async def list_inbound_trunks(self, req: ListSIPInboundTrunkRequest) -> ListSIPInboundTrunkResponse:
        trunks = self.store.inbound_trunks(after_id=listing.after_id(req))
        return ListSIPInboundTrunkResponse(items=listing.list_trunks(trunks, req))

    async def update_inbound_trunk(self, req: UpdateSIPInboundTrunkRequest) -> SIPInboundTrunkInfo:
        _require("sip_trunk_id", req.sip_trunk_id)
        async with self._write_lock:
            current = _found(await self.store.get_inbound_trunk(req.sip_trunk_id), TRUNK_NOT_FOUND, req.sip_trunk_id)
            info = updates.apply_action(current, req, updates.update_inbound_trunk, "sip_trunk_id")
            validate_inbound_trunk(info)
            self._check_trunk(info)
            _stamp(info, created=False, since=current)
            await self.store.put_inbound_trunk(info)
        return info

    # Outbound trunks --------------------------------------------------------------------------------------------

    async def create_outbound_trunk(self, req: CreateSIPOutboundTrunkRequest) -> SIPOutboundTrunkInfo:
        info: SIPOutboundTrunkInfo = _new_trunk(req)
        validate_outbound_trunk(info)
        async with self._write_lock:
            info.sip_trunk_id = new_id(SIP_TRUNK_PREFIX)
            _stamp(info, created=True)
            await self.store.put_outbound_trunk(info)
        return info

    async def get_outbound_trunk(self, req: GetSIPOutboundTrunkRequest) -> GetSIPOutboundTrunkResponse:
        _require("sip_trunk_id", req.sip_trunk_id)
        return GetSIPOutboundTrunkResponse(
            trunk=_found(await self.store.get_outbound_trunk(req.sip_trunk_id), TRUNK_NOT_FOUND, req.sip_trunk_id)
        )

    async def list_outbound_trunks(self, req: ListSIPOutboundTrunkRequest) -> ListSIPOutboundTrunkResponse:
        trunks = self.store.outbound_trunks(after_id=listing.after_id(req))
        return ListSIPOutboundTrunkResponse(items=listing.list_trunks(trunks, req))

    async def update_outbound_trunk(self, req: UpdateSIPOutboundTrunkRequest) -> SIPOutboundTrunkInfo:
        _require("sip_trunk_id", req.sip_trunk_id)
        async with self._write_lock:
            current = _found(await self.store.get_outbound_trunk(req.sip_trunk_id), TRUNK_NOT_FOUND, req.sip_trunk_id)
            info = updates.apply_action(current, req, updates.update_outbound_trunk, "sip_trunk_id")
            validate_outbound_trunk(info)
            _stamp(info, created=False, since=current)
            await self.store.put_outbound_trunk(info)
        return info

    # Dispatch rules ---------------------------------------------------------------------------------------------

    async def create_dispatch_rule(self, req: CreateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        if req.HasField("dispatch_rule"):
            info = req.dispatch_rule
            if info.sip_dispatch_rule_id:
                raise ValidationError("dispatch_rule.sip_dispatch_rule_id: must not be set (the server assigns IDs)")
        else:  # the deprecated flat form of the request
            info = SIPDispatchRuleInfo(
                rule=req.rule if req.HasField("rule") else None,
                trunk_ids=req.trunk_ids,
                inbound_numbers=req.inbound_numbers,
                hide_phone_number=req.hide_phone_number,
                name=req.name,
                metadata=req.metadata,
                attributes=req.attributes,
                room_preset=req.room_preset,
                room_config=req.room_config if req.HasField("room_config") else None,
            )
        updates.upgrade_media(info)
        validate_dispatch_rule(info)
        async with self._write_lock:
            self._check_rule(info)
            info.sip_dispatch_rule_id = new_id(SIP_DISPATCH_RULE_PREFIX)
            _stamp(info, created=True)
            await self.store.put_dispatch_rule(info)
        return info

    async def list_dispatch_rules(self, req: ListSIPDispatchRuleRequest) -> ListSIPDispatchRuleResponse:
        rules = self.store.dispatch_rules(after_id=listing.after_id(req))
        return ListSIPDispatchRuleResponse(items=listing.list_rules(rules, req))

    async def update_dispatch_rule(self, req: UpdateSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        _require("sip_dispatch_rule_id", req.sip_dispatch_rule_id)
        async with self._write_lock:
            current = _found(
                await self.store.get_dispatch_rule(req.sip_dispatch_rule_id), RULE_NOT_FOUND, req.sip_dispatch_rule_id
            )
            info = updates.apply_action(current, req, updates.update_dispatch_rule, "sip_dispatch_rule_id")
            updates.upgrade_media(info)
            validate_dispatch_rule(info)
            self._check_rule(info)
            _stamp(info, created=False, since=current)
            await self.store.put_dispatch_rule(info)
        return info

    async def delete_dispatch_rule(self, req: DeleteSIPDispatchRuleRequest) -> SIPDispatchRuleInfo:
        _require("sip_dispatch_rule_id", req.sip_dispatch_rule_id)
        async with self._write_lock:
            info = _found(
                await self.store.get_dispatch_rule(req.sip_dispatch_rule_id), RULE_NOT_FOUND, req.sip_dispatch_rule_id
            )
            await self.store.delete_dispatch_rule(req.sip_dispatch_rule_id)
        return info

    # Calls ------------------------------------------------------------------------------------------------------

    def _calls(self) -> CallControl:
        if self.calls is None:
            raise TwirpError("unavailable", "this API serves no calls")
        return self.calls

    async def create_participant(self, req: CreateSIPParticipantRequest) -> SIPParticipantInfo:
        calls = self._calls()
        trunk = await self.store.get_outbound_trunk(req.sip_trunk_id) if req.sip_trunk_id else None
        plan = plan_outbound_call(req, trunk, new_id(SIP_CALL_PREFIX))
        created = await calls.create_participant(plan)
        return SIPParticipantInfo(
            participant_id=created.participant_id,
            participant_identity=created.participant_identity,
            room_name=created.room_name,
            sip_call_id=created.sip_call_id,
        )

    async def transfer_participant(self, req: TransferSIPParticipantRequest) -> TransferSIPParticipantResponse:
        calls = self._calls()
        target = validate_transfer_request(req)
        call = calls.find_participant(req.room_name, req.participant_identity)
        done = await call.transfer(
            target, play_dialtone=req.play_dialtone, headers=dict(req.headers), within=transfer_timeout(req)
        )
        return TransferSIPParticipantResponse(
            transfer_id=done.transfer_id,
            status=SIPTransferStatus.STS_TRANSFER_SUCCESSFUL,
            reason=SIPTransferReason.STR_COMPLETED,
            sip_status=SIPStatus(code=done.sip_status, status=done.sip_reason),  # type: ignore[arg-type]  # open enum
        )


def _new_trunk(req: CreateSIPInboundTrunkRequest | CreateSIPOutboundTrunkRequest) -> Any:
    """The trunk of a Create*Trunk request, which must be there and must not carry an ID."""
    if not req.HasField("trunk"):
        raise ValidationError("trunk: missing trunk")
    if req.trunk.sip_trunk_id:
        raise ValidationError("trunk.sip_trunk_id: must not be set (the server assigns IDs)")
    return req.trunk


def _require(field: str, value: str) -> None:
    if not value:
        raise ValidationError(f"{field}: required")


def _found(item: R | None, what: str, record_id: str) -> R:
    if item is None:
        raise TwirpError("not_found", f"{what}: {record_id}")
    return item


def _stamp(
    info: SIPInboundTrunkInfo | SIPOutboundTrunkInfo | SIPDispatchRuleInfo,
    created: bool,
    since: SIPInboundTrunkInfo | SIPOutboundTrunkInfo | SIPDispatchRuleInfo | None = None,
) -> None:
    """Record creation and update times (kept across replace, which would otherwise drop them)."""
    now = time.time_ns()
    if created:
        info.created_at.FromNanoseconds(now)
    elif since is not None and since.HasField("created_at"):
        info.created_at.CopyFrom(since.created_at)
    info.updated_at.FromNanoseconds(now)
