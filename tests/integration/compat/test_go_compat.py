"""sipbridge against LiveKit's Go SIP service: the same scenario against each, as a cluster node of one livekit-server
on Redis, and what a user can see compared.

The scenario: an inbound call through a trunk that maps a header to an attribute and a direct dispatch rule
(ringing, then answered by an agent), an outbound call (CreateSIPParticipant, answered), one with the override
fields (``sip_request_uri``, ``sip_from_header``, ``to_user_override``), one with ``sip_to_header`` beside
``sip_call_to`` (which the Go service refuses: a documented difference), and one to a busy callee. Compared: the SIP
participant's attributes (IDs, ports, the Call-ID and the far end's tag made alike), the Twirp errors (code, message,
``sip_status_code``, ``sip_status``), the Request-URI, From and To at the sipp callee, and the Prometheus metric names
(every ``livekit_sip_*`` / ``livekit_node_*`` name the Go service exposes must be ours too, but those
docs/metrics.md says are not exported); with ``add_record_route`` and ``audio_dtmf`` on both, the Record-Route of
the 200 OK and an agent's digit at the phone (event and tones).
docs/compatibility.md lists the differences and why.

Skipped unless the Go binary is there: ``$SIPBRIDGE_GO_SIP`` or `scripts/install-peers livekit-sip`'s build.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness.audio import goertzel_dbfs
from harness.bridge import api_client
from harness.go_sip import GO_SIP_ENV, GoSipNode, Node, SipbridgeNode, configured_go_sip, go_sip_binary
from harness.participant import TestParticipant
from harness.ports import LOOPBACK
from harness.processes import LiveKitServer, RedisServer
from harness.rooms import wait_for_call_status, wait_gone
from harness.rtp_phone import RATE, RtpPhone
from harness.sipp_callee import SippCallee
from harness.sipp_phone import PhoneResult, SippPhone
from livekit import api

BINARY = go_sip_binary()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        BINARY is None,
        reason=f"LiveKit's Go SIP service is not installed at {configured_go_sip()} "
        f"(set {GO_SIP_ENV}, or run `scripts/install-peers livekit-sip`)",
    ),
]

TRUNK_NUMBER = "+15105550100"
CALLER = "+13105550100"
CALLEE = "+12135550100"
NOT_EXPORTED = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


@dataclass
class Observed:
    """What a user of one node saw."""

    inbound_ringing: dict[str, str] = field(default_factory=dict)
    inbound_active: dict[str, str] = field(default_factory=dict)
    dtmf_to_phone: tuple[list[str], list[int]] = ([], [])
    """An agent's digit at the phone (both nodes run with ``audio_dtmf``): the RFC 4733 digits, and the offsets
    (RTP timestamp units from the event's) of the audio packets carrying its two tones."""
    inbound_answer: dict[str, str] = field(default_factory=dict)
    """Record-Route and Contact of the 200 OK the caller got (both nodes run with ``add_record_route``)."""
    outbound_active: dict[str, str] = field(default_factory=dict)
    overrides_invite: dict[str, str] = field(default_factory=dict)
    plain_invite: dict[str, str] = field(default_factory=dict)
    to_header: tuple[str, dict[str, str], str] = ("", {}, "")
    """``sip_to_header`` beside ``sip_call_to``: the Twirp code and metadata, and the To the callee got."""
    busy_error: tuple[str, dict[str, str], str] = ("", {}, "")
    """The same for a plain call to a busy callee."""
    metric_names: set[str] = field(default_factory=set)


class Run:
    """One node's run of the scenario: livekit-server's API, the node, a phone, and what is being learnt."""

    def __init__(
        self, workdir: Path, server: LiveKitServer, client: api.LiveKitAPI, node: Node, phone: RtpPhone
    ) -> None:
        self.workdir = workdir
        self.server = server
        self.node = node
        self.phone = phone
        self.api = client
        self.seen = Observed()
        self.ids: dict[str, str] = {}
        """Values that differ between runs by nature (IDs, addresses with their ports), and their placeholders."""

    def alike(self, text: str) -> str:
        for value, placeholder in self.ids.items():
            text = text.replace(value, placeholder)
        text = re.sub(r"\bSCL_\w+", "<call id>", text)
        return re.sub(r"\bPA_\w+", "<participant id>", text)

    def attributes(self, participant: api.ParticipantInfo) -> dict[str, str]:
        values = {k: self.alike(v) for k, v in participant.attributes.items()}
        for key, placeholder in (("sip.callIDFull", "<SIP Call-ID>"), ("sip.callTag", "<remote tag>")):
            if key in values:
                values[key] = placeholder
        values |= {"(identity)": participant.identity, "(name)": participant.name, "(kind)": str(participant.kind)}
        return values

    async def clean(self) -> None:
        sip = self.api.sip
        for rule in (await sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items:
            rule_id = rule.sip_dispatch_rule_id
            await sip.delete_dispatch_rule(api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id))
        for trunks in (
            (await sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items,
            (await sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items,
        ):
            for trunk in trunks:
                await sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk.sip_trunk_id))
        for room in (await self.api.room.list_rooms(api.ListRoomsRequest())).rooms:
            await self.api.room.delete_room(api.DeleteRoomRequest(room=room.name))

    async def inbound(self) -> None:
        trunk = api.SIPInboundTrunkInfo(
            name="compat in", numbers=[TRUNK_NUMBER], headers_to_attributes={"X-Customer": "customer.id"}
        )
        created = await self.api.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=trunk))
        self.ids[created.sip_trunk_id] = "<inbound trunk>"
        rule = api.SIPDispatchRuleInfo(
            rule=api.SIPDispatchRule(dispatch_rule_direct=api.SIPDispatchRuleDirect(room_name="compat-in")),
            name="compat", attributes={"rule.attr": "from the rule"},
        )  # fmt: skip
        made = await self.api.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=rule))
        self.ids[made.sip_dispatch_rule_id] = "<rule>"
        sipp = SippPhone(self.workdir / "phone", self.node.sip_port, self.phone.port, headers={"X-Customer": "acme"})
        self.ids[f"{LOOPBACK}:{self.node.sip_port}"] = "<node>"
        call = asyncio.create_task(sipp.call(hold_ms=4000))
        identity = f"sip_{CALLER}"
        ringing = await wait_for_call_status(self.api, "compat-in", identity, "ringing", within=60)
        self.seen.inbound_ringing = self.attributes(ringing)
        agent = TestParticipant(self.server.ws_url, self.server.api_key, self.server.api_secret, "compat-in", "agent")
        async with agent:
            await agent.publish_tone(1000, dbfs=-30)
            active = await wait_for_call_status(self.api, "compat-in", identity, "active", within=60)
            self.seen.inbound_active = self.attributes(active)
            await agent.publish_dtmf(5, "5")
            async with asyncio.timeout(20):
                while not self.phone.digits:  # noqa: ASYNC110 (the phone's socket fills the list; no event)
                    await asyncio.sleep(0.05)
            await self.phone.sample(0.3)
            self.seen.dtmf_to_phone = (list(self.phone.digits), toned_offsets(self.phone))
            result = await call
        result.check()
        ok = result.message("received", "SIP/2.0 200 OK")
        self.seen.inbound_answer = {
            name: self.alike(value.strip()) for name, _, value in (line.partition(":") for line in ok.splitlines())
            if name in ("Record-Route", "Contact")
        }  # fmt: skip
        await wait_gone(self.api, "compat-in", identity, within=60)

    async def dial(self, callee: SippCallee, room: str, **fields: object) -> None:
        trunk = api.SIPOutboundTrunkInfo(name=f"compat {room}", address=callee.address, numbers=[TRUNK_NUMBER])
        created = await self.api.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=trunk))
        self.ids[created.sip_trunk_id] = "<outbound trunk>"
        self.ids[callee.address] = "<callee>"
        request = api.CreateSIPParticipantRequest(
            sip_trunk_id=created.sip_trunk_id, sip_call_to=CALLEE, room_name=room, participant_identity="callee",
            wait_until_answered=True, **fields,  # type: ignore[arg-type]
        )  # fmt: skip
        await self.api.sip.create_sip_participant(request, timeout=60)

    async def outbound(
        self, room: str, fields: Callable[[SippCallee], dict[str, object]] = lambda callee: {}
    ) -> tuple[dict[str, str], PhoneResult]:
        """An answered call (``fields``: more request fields, knowing the callee): the participant's attributes,
        and what the callee saw."""
        callee = SippCallee(self.workdir / room, self.phone.port)
        answering = asyncio.create_task(callee.answer(ring_ms=200))
        await self.dial(callee, room, participant_name="The Callee", participant_attributes={"agent.attr": "a"},
                        **fields(callee))  # fmt: skip
        active = await wait_for_call_status(self.api, room, "callee", "active", within=60)
        await self.api.room.remove_participant(api.RoomParticipantIdentity(room=room, identity="callee"))
        result = await answering
        result.check()
        return self.attributes(active), result

    async def refused(self, room: str, **fields: object) -> tuple[str, dict[str, str], str]:
        """A CreateSIPParticipant to a busy callee: its Twirp code, message and metadata, and the To header the
        callee got ("" when the request was refused before anything was dialled)."""
        callee = SippCallee(self.workdir / room, self.phone.port)
        rejecting = asyncio.create_task(callee.reject("486 Busy Here"))
        with pytest.raises(api.TwirpError) as failure:
            await self.dial(callee, room, **fields)
        error = failure.value
        meta = {k: self.alike(v) for k, v in error.metadata.items() if k != "error_details"}
        meta["(message)"] = self.alike(error.message)
        if error.code == "invalid_argument":  # refused before dialling: the callee waits in vain
            rejecting.cancel()
            return error.code, meta, ""
        result = await rejecting
        result.check()
        return error.code, meta, self.invite_seen(result)["To"]

    def invite_seen(self, result: PhoneResult) -> dict[str, str]:
        invite = result.message("received", "INVITE ")
        headers = {"Request-URI": invite.partition("\n")[0].split(" ")[1]}
        for line in invite.splitlines():
            name, _, value = line.partition(":")
            if name.strip().lower() in ("from", "to"):
                headers[name.strip().title()] = re.sub(r";tag=[\w.-]+", "", value.strip())
        return {k: self.alike(v) for k, v in headers.items()}

    async def run(self) -> Observed:
        await self.clean()
        try:
            await self.inbound()
            self.seen.outbound_active, plain = await self.outbound("compat-out")
            self.seen.plain_invite = self.invite_seen(plain)
            _, overridden = await self.outbound("compat-override", overrides)
            self.seen.overrides_invite = self.invite_seen(overridden)
            self.seen.to_header = await self.refused(
                "compat-to-header", sip_to_header=api.SIPNamedDest(raw="sip:to-user@to.example.com")
            )
            self.seen.busy_error = await self.refused("compat-busy")
            self.seen.metric_names = metric_names(self.node.metrics_text())
        finally:
            await self.clean()
        return self.seen


def overrides(callee: SippCallee) -> dict[str, object]:
    """The override fields: the Request-URI names the callee (where the Go service sends the INVITE) by values."""
    return {
        "sip_request_uri": api.SIPRequestDest(values=api.SIPUri(user="ruri-user", host=LOOPBACK, port=callee.port)),
        "sip_from_header": api.SIPNamedDest(display_name="From Name", raw="sip:from-user@from.example.com"),
        "to_user_override": "to-override",
    }


def toned_offsets(phone: RtpPhone) -> list[int]:
    """Where the digit 5's tones (770 and 1336 Hz, each above -20 dBFS) are in the phone's audio: each such
    packet's RTP timestamp less the first digit event's."""
    start = phone.digit_stamps[0]
    return [
        (stamp - start + 0x80000000) % 0x100000000 - 0x80000000
        for stamp, frame in zip(phone.audio_stamps, phone.received, strict=True)
        if min(goertzel_dbfs(frame, RATE, 770.0), goertzel_dbfs(frame, RATE, 1336.0)) > -20
    ]


def metric_names(text: str) -> set[str]:
    return {m for m in re.findall(r"^# TYPE (\S+) ", text, re.M) if m.startswith(("livekit_sip_", "livekit_node_"))}


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory, livekit_server_redis: LiveKitServer, redis_server: RedisServer
) -> dict[str, Observed]:
    """The scenario against the Go service, then against sipbridge, one node at a time beside livekit-server."""
    assert BINARY is not None
    workdir = tmp_path_factory.mktemp("compat")
    keys = {"add_record_route": True, "audio_dtmf": True}
    nodes: list[Node] = [
        GoSipNode(workdir / "go", BINARY, livekit_server_redis, redis_server, rtp_ports=100, extra=keys),
        SipbridgeNode(workdir / "sipbridge", livekit_server_redis, redis_server, extra=keys),
    ]
    seen: dict[str, Observed] = {}
    for node in nodes:

        async def run(node: Node = node) -> Observed:
            phone = RtpPhone()
            await phone.start()
            try:
                async with api_client(livekit_server_redis) as client:
                    return await Run(workdir / f"{node.name}-run", livekit_server_redis, client, node, phone).run()
            finally:
                await phone.close()

        node.start()
        try:
            seen[node.name] = asyncio.run(run())
        finally:
            node.stop()
    return seen


def test_sip_participant_attributes_match(observed: dict[str, Observed]) -> None:
    go, ours = observed["go"], observed["sipbridge"]
    assert ours.inbound_ringing == go.inbound_ringing
    assert ours.inbound_active == go.inbound_active
    assert ours.outbound_active == go.outbound_active


def test_a_digit_reaches_the_phone_alike(observed: dict[str, Observed]) -> None:
    """With ``audio_dtmf``: the RFC 4733 event, and its tones in a run of audio packets as long as the Go
    service's (250 ms; the Go service's mixer puts them a few packets after the event's timestamp, ours in the
    event's own slots)."""
    (go_digits, go_toned), (our_digits, our_toned) = observed["go"].dtmf_to_phone, observed["sipbridge"].dtmf_to_phone
    assert our_digits == go_digits == ["5"]
    assert go_toned and our_toned
    assert abs(len(our_toned) - len(go_toned)) <= 1, (our_toned, go_toned)
    assert our_toned == list(range(our_toned[0], our_toned[-1] + 1, 160)), our_toned


def test_record_route_on_the_answer_matches(observed: dict[str, Observed]) -> None:
    go, ours = observed["go"], observed["sipbridge"]
    assert ours.inbound_answer["Record-Route"] == go.inbound_answer["Record-Route"]


def test_twirp_errors_match(observed: dict[str, Observed]) -> None:
    go, ours = observed["go"], observed["sipbridge"]
    assert ours.busy_error == go.busy_error
    assert go.busy_error[1]["sip_status_code"] == "486"


def test_sip_to_header_beside_sip_call_to_is_a_documented_difference(observed: dict[str, Observed]) -> None:
    """livekit-server always passes ``sip_call_to``, and the Go service refuses a To header beside it, so there
    ``sip_to_header`` can never be used; here it sets the To header (docs/compatibility.md)."""
    go, ours = observed["go"], observed["sipbridge"]
    refusal = "twirp error unknown: invalid To header: cannot use both CallTo and SipToHeader"  # livekit-server's words
    assert go.to_header == ("invalid_argument", {"(message)": refusal}, "")
    assert ours.to_header == (*ours.busy_error[:2], "<sip:to-user@to.example.com>")


def test_headers_on_the_wire_match(observed: dict[str, Observed]) -> None:
    go, ours = observed["go"], observed["sipbridge"]
    assert ours.plain_invite == go.plain_invite
    assert ours.overrides_invite == go.overrides_invite


def test_every_go_metric_name_is_exposed(observed: dict[str, Observed]) -> None:
    paragraph = NOT_EXPORTED.read_text().partition("Not exported:")[2].partition("\n\n")[0]
    documented_absent = set(re.findall(r"`(livekit_\w+)`", paragraph))
    missing = observed["go"].metric_names - observed["sipbridge"].metric_names - documented_absent
    assert not missing, f"the Go service exposes {sorted(missing)}, sipbridge does not"
