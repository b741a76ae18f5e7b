"""The operator's dry run: what the bridge would do with a call, and why, as text or JSON.

Pure: the caller loads trunks and rules (``sipbridge dispatch test`` reads the configured store).
Random room suffixes and per-call IDs are shown as placeholders so that the output is repeatable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict
from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo, SIPMediaEncryption

from dispatch.call import InviteFacts
from dispatch.decide import OPEN_CONFIGURATION_WARNING, Decision, Verdict, decide, is_open_configuration
from dispatch.rule_kinds import kind_api_name, rule_kind

RANDOM_SUFFIX = "<random>"
CALL_ID = "<call-id>"
SIP_CALL_ID = "<sip-call-id>"


@dataclass(frozen=True)
class SimulationReport:
    call: InviteFacts
    pin: str
    pin_requested: bool
    decision: Decision
    open_configuration: bool

    @property
    def accepted(self) -> bool:
        return self.decision.verdict in (Verdict.ACCEPT, Verdict.REQUEST_PIN)

    def to_dict(self) -> dict[str, Any]:
        decision = self.decision
        trunk, rule, dispatch = decision.trunk, decision.rule, decision.dispatch
        credentials = decision.credentials
        return {
            "call": {
                "to": self.call.called_number,
                "from": self.call.calling_number,
                "source": self.call.source_ip,
                "from_host": self.call.from_host,
                "auth_username": self.call.auth_username,
                "pin": self.pin or None,
                "headers": [list(h) for h in self.call.headers],
            },
            "verdict": decision.verdict.value,
            "sip_status": decision.sip_status,
            "reason": decision.reason,
            "open_configuration": self.open_configuration,
            "trunk": {"id": trunk.sip_trunk_id, "name": trunk.name} if trunk is not None else None,
            "digest_auth": (
                {"username": credentials.username, "realm": credentials.realm} if credentials is not None else None
            ),
            "rule": (
                {"id": rule.sip_dispatch_rule_id, "name": rule.name, "kind": kind_api_name(rule_kind(rule))}
                if rule is not None
                else None
            ),
            "pin_requested": self.pin_requested,
            "room": dispatch.room_name if dispatch else None,
            "participant": (
                {
                    "identity": dispatch.participant_identity,
                    "name": dispatch.participant_name,
                    "metadata": dispatch.participant_metadata,
                    "attributes": dict(sorted(dispatch.participant_attributes.items())),
                }
                if dispatch
                else None
            ),
            "room_preset": dispatch.room_preset if dispatch else None,
            "room_config": (
                MessageToDict(dispatch.room_config, preserving_proto_field_name=True)
                if dispatch and dispatch.room_config is not None
                else None
            ),
            "krisp_enabled": dispatch.krisp_enabled if dispatch else None,
            "ringing_timeout_seconds": dispatch.ringing_timeout_seconds if dispatch else None,
            "max_call_duration_seconds": dispatch.max_call_duration_seconds if dispatch else None,
            "media_encryption": (
                SIPMediaEncryption.Name(decision.media.encryption) if decision.media is not None else None
            ),
            "answer_headers": dispatch.answer_headers(dispatch.participant_attributes) if dispatch else None,
            "trunks_considered": [
                {"id": c.trunk_id, "name": c.name, "admitted": c.admitted, "reasons": list(c.reasons)}
                for c in decision.trunk_match.considered
            ],
            "rules_considered": (
                [
                    {"id": c.rule_id, "name": c.name, "selected": c.eligible, "reasons": list(c.reasons)}
                    for c in decision.rule_selection.considered
                ]
                if decision.rule_selection is not None
                else None
            ),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        data = self.to_dict()
        lines = [
            f"call {data['call']['from']} -> {data['call']['to']} from {data['call']['source']}",
            f"verdict: {data['verdict']} (SIP {data['sip_status']}): {data['reason']}",
        ]
        if self.open_configuration:
            lines.append(f"warning: {OPEN_CONFIGURATION_WARNING}")
        trunk = data["trunk"]
        if trunk:
            lines.append(f"trunk: {trunk['id']} ({trunk['name'] or 'no name'})")
        else:
            lines.append("trunk: none" + ("" if data["trunks_considered"] else " configured (trunkless call)"))
        if data["digest_auth"]:
            auth = data["digest_auth"]
            lines.append(f"digest auth: user {auth['username']!r}, realm {auth['realm'] or '<default>'!r}")
        rule = data["rule"]
        if rule:
            lines.append(f"rule: {rule['id']} ({rule['name'] or 'no name'}), {rule['kind']}")
        if self.pin_requested:
            lines.append("PIN: requested" + (f", entered {self.pin!r}" if self.pin else ""))
        if data["room"] is not None:
            participant = data["participant"]
            lines += [
                f"room: {data['room']}",
                f"participant: {participant['identity']} ({participant['name']})",
            ]
            if participant["metadata"]:
                lines.append(f"metadata: {participant['metadata']}")
            lines.append("attributes:")
            lines += [f"  {key} = {value}" for key, value in participant["attributes"].items()]
            if data["room_config"]:
                lines.append(f"room config: {json.dumps(data['room_config'])}")
            lines.append(
                f"media encryption: {data['media_encryption']}, krisp: {data['krisp_enabled']}, "
                f"ringing timeout: {_seconds(data['ringing_timeout_seconds'])}, "
                f"max call duration: {_seconds(data['max_call_duration_seconds'])}"
            )
            if data["answer_headers"]:
                lines.append("200 OK headers:")
                lines += [f"  {name}: {value}" for name, value in data["answer_headers"].items()]
        if not self.accepted:
            lines += _considered_lines(data)
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "default" if value is None else f"{value:g}s"


def _considered_lines(data: dict[str, Any]) -> list[str]:
    lines = ["trunks considered:"]
    lines += [
        f"  {t['id']} ({t['name'] or 'no name'}): {'admitted' if t['admitted'] else 'passed over'}"
        + "".join(f"\n    - {reason}" for reason in t["reasons"])
        for t in data["trunks_considered"]
    ] or ["  (no inbound trunks configured)"]
    if data["rules_considered"] is None:
        why = (
            "until the caller authenticates (try --auth USER)"
            if data["verdict"] == Verdict.AUTH_REQUIRED
            else "(the call was refused at the trunk)"
        )
        lines.append(f"dispatch rules: not consulted {why}")
        return lines
    lines.append("dispatch rules considered:")
    lines += [
        f"  {r['id']} ({r['name'] or 'no name'}): " + "; ".join(r["reasons"]) for r in data["rules_considered"]
    ] or ["  (no dispatch rules configured)"]
    return lines


def simulate(
    trunks: Sequence[SIPInboundTrunkInfo],
    rules: Sequence[SIPDispatchRuleInfo],
    called_number: str,
    calling_number: str,
    source_ip: str,
    pin: str = "",
    headers: Sequence[tuple[str, str]] = (),
    auth_username: str | None = None,
    from_host: str = "",
) -> SimulationReport:
    """Run the inbound decision for a made-up call, entering ``pin`` if a PIN is asked for.

    ``auth_username`` stands for digest credentials under that user name that verify.
    """
    call = InviteFacts(
        called_number=called_number,
        calling_number=calling_number,
        source_ip=source_ip,
        from_host=from_host,
        auth_username=auth_username,
        lk_call_id=CALL_ID,
        sip_call_id=SIP_CALL_ID,
        headers=tuple(headers),
    )
    decision = decide(trunks, rules, call, new_suffix=lambda: RANDOM_SUFFIX)
    pin_requested = decision.verdict is Verdict.REQUEST_PIN
    if pin_requested and pin:
        decision = decide(trunks, rules, call, pin=pin, answered=True, new_suffix=lambda: RANDOM_SUFFIX)
    return SimulationReport(call, pin, pin_requested, decision, is_open_configuration(trunks, rules))
