"""What the fuzzer feeds mutants to, and what counts as an escape.

* ``parser``: `parse_message` (datagram and stream rules) and the stream framer fed in random cuts. Only
  `SipParseError` may come out.
* ``agent``: a long-lived sans-IO `UserAgent` holding an answered call, fed out-of-dialog requests, in-dialog
  requests aimed at that call (its To tag filled in), and responses to an INVITE it sent. Nothing may come out
  of `receive_datagram` or `handle_timer`, and the agent's catch-all (`internal_errors`) must stay at zero.
* ``call entry``: every INVITE the agent turns into a call goes through what the inbound call flow does before
  any I/O — `invite_facts`, `dispatch.decide` over a configuration with digest auth, PINs and each rule
  kind, the digest check, and offer/answer. Only `SipParseError` and `NegotiationError` may come out.

An escape carries the input, so it can be replayed: ``Escape.replay()``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import traceback
from dataclasses import dataclass, field

from corpus import BRIDGE, CALLER, IN_DIALOG, INVITES, OUT_OF_DIALOG, RESPONSES
from livekit.protocol.sip import (
    SIPDispatchRule,
    SIPDispatchRuleCallee,
    SIPDispatchRuleDirect,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
)
from mutator import mutate

from dispatch.decide import decide
from sipbridge.calls.invite_facts import invite_facts
from sipbridge.sip.errors import SipParseError
from sipbridge.sip.events import CallEnded, IncomingCall
from sipbridge.sip.message import StreamFramer, parse_message
from sipbridge.sip.offer_answer import MediaSession, NegotiationError
from sipbridge.sip.settings import SipSettings
from sipbridge.sip.transaction import Address
from sipbridge.sip.useragent import UserAgent

SOURCE = Address("UDP", CALLER, 5060)
TRUNKS = [
    SIPInboundTrunkInfo(sip_trunk_id="ST_auth", numbers=["+15105550100"], auth_username="user", auth_password="pass"),
    SIPInboundTrunkInfo(sip_trunk_id="ST_net", numbers=["+15105550101"], allowed_addresses=["192.0.2.0/24"]),
    SIPInboundTrunkInfo(sip_trunk_id="ST_hdr", numbers=["+15105550102"], headers_to_attributes={"X-Customer-Id": "c"}),
]
RULES = [
    SIPDispatchRuleInfo(
        sip_dispatch_rule_id="SDR_ind",
        trunk_ids=["ST_auth"],
        rule=SIPDispatchRule(dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix="call-")),
    ),
    SIPDispatchRuleInfo(
        sip_dispatch_rule_id="SDR_pin",
        trunk_ids=["ST_net"],
        rule=SIPDispatchRule(dispatch_rule_direct=SIPDispatchRuleDirect(room_name="conf", pin="1234")),
    ),
    SIPDispatchRuleInfo(
        sip_dispatch_rule_id="SDR_callee",
        trunk_ids=["ST_hdr"],
        rule=SIPDispatchRule(dispatch_rule_callee=SIPDispatchRuleCallee(room_prefix="to-")),
    ),
]


class Escape(Exception):
    def __init__(self, target: str, data: bytes, detail: str) -> None:
        super().__init__(f"{target}: {detail}")
        self.target = target
        self.data = data
        self.detail = detail

    def replay(self) -> str:
        return f"target {self.target!r}, input {self.data!r}\n{self.detail}"


@dataclass
class Tally:
    inputs: dict[str, int] = field(default_factory=lambda: {"parser": 0, "agent": 0, "call entry": 0})
    escapes: list[Escape] = field(default_factory=list)

    def total(self) -> int:
        return sum(self.inputs.values())


def fuzz_parser(data: bytes, rng: random.Random) -> None:
    for stream in (False, True):
        with contextlib.suppress(SipParseError):
            parse_message(data, stream=stream)
    framer = StreamFramer()
    cuts = sorted(rng.randint(0, len(data)) for _ in range(2))
    try:
        for piece in (data[: cuts[0]], data[cuts[0] : cuts[1]], data[cuts[1] :]):
            for message in framer.feed(piece):
                with contextlib.suppress(SipParseError):
                    parse_message(message, stream=True)
    except SipParseError:
        pass


def _enter_call(agent: UserAgent, event: IncomingCall, tally: Tally, data: bytes, now: float) -> None:
    """What the inbound flow does with a new call before any I/O, then an answer (or a refusal)."""
    call = agent.call_info(event.handle)
    tally.inputs["call entry"] += 1
    try:
        info = invite_facts(call.invite, call.peer.host, "SCL_fuzz")
        decision = decide(TRUNKS, RULES, info)
        if decision.credentials is not None:
            agent.authenticate(event.handle, decision.credentials.username, decision.credentials.password)
        agent.answer(event.handle, MediaSession(BRIDGE, 30000, codecs=["PCMU", "G722", "opus"]), now)
    except (SipParseError, NegotiationError):
        pass
    except Exception:
        tally.escapes.append(Escape("call entry", data, traceback.format_exc()))


class AgentTarget:
    """A user agent that lives across inputs, re-made when its call ends or after a while."""

    def __init__(self) -> None:
        self._make()

    def _make(self) -> None:
        self.agent = UserAgent(SipSettings(port=5060), local_host=BRIDGE)
        self.now = 0.0
        self.fed = 0
        self.agent.receive_datagram(INVITES[0].encode(), SOURCE, self.now)
        event = self.agent.next_event()
        assert isinstance(event, IncomingCall)
        self.agent.answer(event.handle, MediaSession(BRIDGE, 30000), self.now)
        self.tag = self.agent.call_info(event.handle).local_tag
        self.agent.invite(f"sip:bob@{CALLER}", MediaSession(BRIDGE, 30002), self.now, from_uri=f"sip:us@{BRIDGE}")
        sent = self.agent.datagrams_to_send()[-1][0].decode()
        self.fields = {
            "via": sent.split("Via: ", 1)[1].split("\r\n", 1)[0],
            "frm": sent.split("From: ", 1)[1].split("\r\n", 1)[0],
            "call_id": sent.split("Call-ID: ", 1)[1].split("\r\n", 1)[0],
        }

    def seeds(self) -> list[bytes]:
        in_dialog = [m.replace("{tag}", self.tag) for m in IN_DIALOG]
        responses = [r.format(**self.fields) for r in RESPONSES]
        return [s.encode() for s in (*INVITES, *OUT_OF_DIALOG, *in_dialog, *responses)]

    def feed(self, data: bytes, tally: Tally) -> None:
        agent = self.agent
        before = agent.internal_errors
        self.now += 0.05
        tally.inputs["agent"] += 1
        ended = False
        try:
            agent.receive_datagram(data, SOURCE, self.now)
            while (event := agent.next_event()) is not None:
                if isinstance(event, IncomingCall):
                    _enter_call(agent, event, tally, data, self.now)
                ended = ended or isinstance(event, CallEnded)
            if self.fed % 16 == 15:
                self.now += 40.0
                agent.handle_timer(self.now)
            agent.datagrams_to_send()
        except Exception:
            tally.escapes.append(Escape("agent", data, traceback.format_exc()))
        if agent.internal_errors != before:
            tally.escapes.append(Escape("agent", data, "the agent's catch-all caught:\n" + _CAUGHT.last))
        self.fed += 1
        if ended or self.fed >= 64:
            self._make()


class _LastError(logging.Handler):
    """Keeps the traceback the agent's catch-all logs, for the escape's report; nothing else is printed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = (
            record.getMessage()
            + "\n"
            + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        )


_CAUGHT = _LastError()


def run(seed: int, inputs: int) -> Tally:
    """`inputs` mutants from `seed`: a third to the parser alone, the rest through the agent (and calls)."""
    sip_log = logging.getLogger("sipbridge")
    sip_log.propagate = False  # the agent logs each bad message it refuses: keep a fuzz run quiet
    if _CAUGHT not in sip_log.handlers:
        sip_log.addHandler(_CAUGHT)
    rng = random.Random(seed)
    target = AgentTarget()
    tally = Tally()
    for n in range(inputs):
        seeds = target.seeds()
        data = mutate(rng, seeds)
        if n % 3 == 0:
            tally.inputs["parser"] += 1
            try:
                fuzz_parser(data, rng)
            except Exception:
                tally.escapes.append(Escape("parser", data, traceback.format_exc()))
        else:
            target.feed(data, tally)
    return tally
