"""Inbound decisions by livekit-server over psrpc (`IOInfo`), as LiveKit's Go service asks for them.

`GetSIPTrunkAuthentication` says which trunk takes the call and with which credentials, `EvaluateSIPDispatchRules`
where it goes (room, participant, attributes, room configuration, headers, limits, features) or that it needs a PIN,
is rejected or dropped. On top, this node applies its stricter trunk admission (docs/dispatch.md) to the same
trunks, read from the same Redis: when inbound trunks exist and none admits the call, it is refused with 404 before
livekit-server is asked, where LiveKit's open-source server would let catch-all rules take it.
"""

from __future__ import annotations

from livekit.protocol.sip import SIPFeature, SIPMediaConfig, SIPUri

from dispatch.call import InviteFacts
from dispatch.decide import Decision, Verdict
from dispatch.evaluate import PROVIDER_HEADER_ATTRIBUTES, CallDispatch, headers_as_attributes
from dispatch.outbound import duration_seconds, media_with_encryption
from dispatch.trunks import TrunkCredentials, TrunkMatch, TrunkVerdict, match_trunk
from sipbridge.psrpc import IOInfoClient
from sipbridge.psrpc.rpc import (
    EvaluateSIPDispatchRulesRequest,
    EvaluateSIPDispatchRulesResponse,
    GetSIPTrunkAuthenticationRequest,
    SIPCall,
    SIPDispatchResult,
)
from sipbridge.store import SIPStore

_LOCAL_REFUSALS = {
    TrunkVerdict.NO_TRUNK: Verdict.NO_TRUNK,
    TrunkVerdict.AMBIGUOUS: Verdict.CONFLICT,
}


class IOInfoDecider:
    def __init__(self, io: IOInfoClient, store: SIPStore) -> None:
        self.io = io
        self.store = store

    async def decide(
        self, call: InviteFacts, *, pin: str = "", no_pin: bool = False, answered: bool = False
    ) -> Decision:
        local = match_trunk(self.store.inbound, call)
        refusal = _LOCAL_REFUSALS.get(local.verdict)
        if refusal is not None:
            return Decision(refusal, local.reason, local)
        sip_call = _sip_call(call)
        auth = await self.io.get_sip_trunk_authentication(GetSIPTrunkAuthenticationRequest(call=sip_call))
        if auth.drop or auth.error_code:
            return Decision(Verdict.NO_TRUNK, "livekit-server: no trunk takes the call", local)
        credentials = None
        if auth.username or auth.password:
            credentials = TrunkCredentials(auth.username, auth.password, auth.realm or _realm(local))
        trunk_match = TrunkMatch(local.verdict, local.trunk, local.reason, credentials, local.considered)
        if credentials is not None and call.auth_username is None:
            return Decision(Verdict.AUTH_REQUIRED, "the trunk asks for digest credentials", trunk_match)
        evaluation = await self.io.evaluate_sip_dispatch_rules(
            EvaluateSIPDispatchRulesRequest(sip_trunk_id=auth.sip_trunk_id, call=sip_call, pin=pin, no_pin=no_pin)
        )
        result = evaluation.result
        if result == SIPDispatchResult.LEGACY_ACCEPT_OR_PIN:
            result = SIPDispatchResult.REQUEST_PIN if evaluation.request_pin else SIPDispatchResult.ACCEPT
        media = media_with_encryption(
            evaluation.media if evaluation.HasField("media") else None, evaluation.media_encryption
        )
        if result == SIPDispatchResult.REQUEST_PIN:
            return Decision(Verdict.REQUEST_PIN, "livekit-server asks for a PIN", trunk_match, media=media)
        if result != SIPDispatchResult.ACCEPT:
            verdict = Verdict.WRONG_PIN if pin else Verdict.NO_RULE
            return Decision(verdict, f"livekit-server: {SIPDispatchResult(result).name}", trunk_match)
        dispatch = _dispatch(evaluation, call, media)
        return Decision(Verdict.ACCEPT, f"room {dispatch.room_name!r}", trunk_match, dispatch=dispatch, media=media)


def _sip_call(call: InviteFacts) -> SIPCall:
    to = SIPUri(user=call.called_number, host=call.called_host)
    return SIPCall(
        lk_call_id=call.lk_call_id,
        source_ip=call.source_ip,
        address=to,
        to=to,
        sip_call_id=call.sip_call_id,
        **{"from": SIPUri(user=call.calling_number, host=call.from_host)},
    )


def _realm(local: TrunkMatch) -> str:
    return local.credentials.realm if local.credentials is not None else ""


def _dispatch(evaluation: EvaluateSIPDispatchRulesResponse, call: InviteFacts, media: SIPMediaConfig) -> CallDispatch:
    """livekit-server's answer as the call flow's dispatch, plus the attributes this node takes from headers."""
    attributes = headers_as_attributes(call.headers, evaluation.include_headers, PROVIDER_HEADER_ATTRIBUTES)
    attributes.update(headers_as_attributes(call.headers, 0, evaluation.headers_to_attributes))
    attributes.update(evaluation.participant_attributes)
    return CallDispatch(
        trunk_id=evaluation.sip_trunk_id,
        rule_id=evaluation.sip_dispatch_rule_id,
        room_name=evaluation.room_name,
        participant_identity=evaluation.participant_identity,
        participant_name=evaluation.participant_name,
        participant_metadata=evaluation.participant_metadata,
        participant_attributes=attributes,
        room_preset=evaluation.room_preset,
        room_config=evaluation.room_config if evaluation.HasField("room_config") else None,
        media=media,
        krisp_enabled=SIPFeature.KRISP_ENABLED in evaluation.enabled_features,
        ringing_timeout_seconds=duration_seconds(evaluation, "ringing_timeout"),
        max_call_duration_seconds=duration_seconds(evaluation, "max_call_duration"),
        headers=dict(evaluation.headers),
        attributes_to_headers=dict(evaluation.attributes_to_headers),
    )
