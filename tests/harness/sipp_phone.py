"""The signalling half of a test phone: sipp as a caller, with a scenario rendered for each test.

The SDP offers G.711 µ-law and telephone-event on the `RtpPhone`'s port, so sipp does real SIP (transactions,
retransmissions, digest) and the test's own socket carries the media. sipp writes every message it sends and
receives to a log the test can read (`messages`), e.g. to check a Reason header.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from .binaries import require_binary
from .ports import LOOPBACK, free_tcp_udp_port

SDP = """Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=- 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [local_ip]
      t=0 0
      m=audio {rtp_port} RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      a=ptime:20
      a=sendrecv"""
"""A G.711 µ-law + telephone-event SDP body (with its headers) on an `RtpPhone`'s port, for sipp to send."""

_INVITE = """\
  <send retrans="500">
    <![CDATA[
      INVITE sip:{to}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:{from_}@[local_ip]:[local_port]>
      Max-Forwards: 70
      {auth}{headers}{sdp}
    ]]>
  </send>
"""

# ACK of a non-2xx and CANCEL belong to the INVITE's transaction: same branch, so the INVITE's Via, which
# [last_Via:] copies from the response just received.
_ACK = """\
  <send>
    <![CDATA[
      ACK sip:{to}@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""

_ACK_2XX = """\
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""

_BYE = """\
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {next_cseq} BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""

_REPLY = """\
  <send>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""

AWAIT_BYE = '  <recv request="BYE"/>\n' + _REPLY.format(status="200 OK")
"""Wait for the other side's BYE and answer it 200."""

_NOTIFY = """\
  <send retrans="500">
    <![CDATA[
      NOTIFY [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {next_cseq} NOTIFY
      [routes]
      Contact: <sip:{from_}@[local_ip]:[local_port]>
      Event: refer
      Subscription-State: terminated;reason=noresource
      Max-Forwards: 70
      Content-Type: message/sipfrag;version=2.0
      Content-Length: [len]

      SIP/2.0 {sipfrag}
    ]]>
  </send>
  <recv response="200"/>
"""

_REINVITE = """\
  <send retrans="500">
    <![CDATA[
      INVITE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      [routes]
      Contact: <sip:{from_}@[local_ip]:[local_port]>
      Max-Forwards: 70
      {sdp}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
"""

_INFO_DIGIT = """\
  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      [routes]
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={digit}
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
"""

_CANCEL = """\
  <send>
    <![CDATA[
      CANCEL sip:{to}@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:{from_}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{to}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
"""


@dataclass
class PhoneResult:
    returncode: int
    stderr: str
    messages: str

    def check(self) -> None:
        assert self.returncode == 0, f"sipp exited {self.returncode}\n{self.stderr[-2000:]}\n{self.messages[-4000:]}"

    def message(self, direction: str, start: str) -> str:
        """The first message sipp ``sent`` or ``received`` (`direction`) whose first line starts with `start`, e.g.
        ``("received", "SIP/2.0 200")`` or ``("sent", "BYE")``, headers and body; "" when there was none."""
        for block in self.messages.split("-" * 47 + " ")[1:]:
            _, _, rest = block.partition("\n")
            kind, _, text = rest.partition("\n\n")
            if f"message {direction}" in kind and text.startswith(start):
                return text
        return ""

    def sent_at(self, cseq: str) -> float:
        """When sipp sent the request with this CSeq (``"3 INVITE"``), from its message log (its local time, as
        ``time.time()`` counts)."""
        for block in self.messages.split("-" * 47 + " ")[1:]:
            stamp, _, rest = block.partition("\n")
            if rest.startswith("UDP message sent") and re.search(rf"^CSeq:\s*{cseq}\s*$", rest, re.M | re.I):
                return datetime.datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        raise AssertionError(f"sipp sent no request with CSeq {cseq}")


class SippPhone:
    """One call from sipp to the bridge. What happens after the INVITE is chosen by the method called."""

    def __init__(
        self,
        workdir: Path,
        bridge_sip_port: int,
        rtp_port: int,
        *,
        to: str = "+15105550100",
        from_: str = "+13105550100",
        headers: dict[str, str] | None = None,
        call_id: str | None = None,
    ) -> None:
        """`call_id`: the Call-ID of every call this phone makes (sipp's own otherwise), for tests whose outcome
        depends on it, such as a proxy hashing Call-IDs over several nodes."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.bridge_port = bridge_sip_port
        self.port = free_tcp_udp_port()
        self.rtp_port = rtp_port
        self.to = to
        self.from_ = from_
        self.headers = "".join(f"{k}: {v}\n      " for k, v in (headers or {}).items())
        self.call_id = call_id
        self._runs = 0

    def _invite(self, cseq: int, auth: str = "") -> str:
        return _INVITE.format(
            to=self.to, from_=self.from_, cseq=cseq, auth=auth, headers=self.headers,
            sdp=SDP.format(rtp_port=self.rtp_port),
        )  # fmt: skip

    def _fmt(self, template: str, cseq: int = 1) -> str:
        return template.format(to=self.to, from_=self.from_, cseq=cseq, next_cseq=cseq + 1)

    def _answered(self, cseq: int) -> str:
        return (
            '  <recv response="100" optional="true"/>\n'
            '  <recv response="180" optional="true"/>\n'
            '  <recv response="183" optional="true"/>\n'
            '  <recv response="200" rrs="true"/>\n' + self._fmt(_ACK_2XX, cseq)
        )

    def _authenticated_invite(self, user: str, password: str) -> str:
        """INVITE, the 401 challenge and its ACK, then the INVITE again with digest credentials (CSeq 2)."""
        auth = f"[authentication username={user} password={password}]\n      "
        return (
            self._invite(1)
            + '  <recv response="100" optional="true"/>\n  <recv response="401" auth="true"/>\n'
            + self._fmt(_ACK, 1)
            + self._invite(2, auth)
        )

    async def call(
        self,
        *,
        hold_ms: int | None = None,
        auth: tuple[str, str] | None = None,
        limit: float = 90.0,
    ) -> PhoneResult:
        """Call, get answered, then hang up after `hold_ms` (BYE) or, when None, wait for the bridge's BYE."""
        cseq = 2 if auth else 1
        body = self._authenticated_invite(*auth) if auth else self._invite(1)
        body += self._answered(cseq)
        if hold_ms is not None:
            body += f'  <pause milliseconds="{hold_ms}"/>\n' + self._fmt(_BYE, cseq)
        else:
            body += AWAIT_BYE
        return await self._run(body, limit)

    async def call_entering_digits_by_info(
        self, digits: str, *, hold_ms: int, auth: tuple[str, str] | None = None, limit: float = 90.0
    ) -> PhoneResult:
        """Call, get answered, key `digits` as SIP INFO (application/dtmf-relay, one request each), then hang up
        after `hold_ms`."""
        cseq = 2 if auth else 1
        body = self._authenticated_invite(*auth) if auth else self._invite(1)
        body += self._answered(cseq)
        for digit in digits:
            cseq += 1
            body += _INFO_DIGIT.format(to=self.to, from_=self.from_, cseq=cseq, digit=digit)
        body += f'  <pause milliseconds="{hold_ms}"/>\n' + self._fmt(_BYE, cseq)
        return await self._run(body, limit)

    async def call_and_get_transferred(
        self, *, refer_status: str = "202 Accepted", sipfrag: str = "200 OK", limit: float = 90.0
    ) -> PhoneResult:
        """Call, get answered, then answer the bridge's REFER with `refer_status`. When accepted, report `sipfrag`
        in a NOTIFY. Either way, then wait for the bridge's BYE (after a successful transfer, at once)."""
        body = self._invite(1) + self._answered(1) + '  <recv request="REFER"/>\n'
        body += _REPLY.format(status=refer_status)
        if refer_status.startswith("2"):
            body += self._fmt(_NOTIFY.replace("{sipfrag}", sipfrag), 1)
        body += AWAIT_BYE
        return await self._run(body, limit)

    async def call_and_hold(self, direction: str, *, hold_ms: int, marks: Path, limit: float = 120.0) -> PhoneResult:
        """Call, get answered, put the bridge on hold with a re-INVITE whose SDP says `direction` (``sendonly``
        or ``inactive``), stay held `hold_ms`, resume with ``sendrecv``, then hang up 4 s later. sipp
        creates ``held`` and ``resumed`` in the directory `marks` as each re-INVITE is ACKed (the result's
        `PhoneResult.sent_at` says when each was sent)."""
        marks.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a directory before the run)

        def reinvite(cseq: int, to: str) -> str:
            sdp = SDP.format(rtp_port=self.rtp_port).replace("a=sendrecv", f"a={to}")
            return _REINVITE.format(to=self.to, from_=self.from_, cseq=cseq, sdp=sdp) + self._fmt(_ACK_2XX, cseq)

        def mark(name: str) -> str:
            return f'  <nop><action><exec command="touch {marks / name}"/></action></nop>\n'

        body = self._invite(1) + self._answered(1) + '  <pause milliseconds="1500"/>\n'
        body += reinvite(2, direction) + mark("held") + f'  <pause milliseconds="{hold_ms}"/>\n'
        body += reinvite(3, "sendrecv") + mark("resumed") + '  <pause milliseconds="4000"/>\n'
        body += self._fmt(_BYE, 3)
        return await self._run(body, limit)

    async def call_expecting(
        self, status: int, *, auth: tuple[str, str] | None = None, limit: float = 30.0
    ) -> PhoneResult:
        """Call and expect the final response `status` (then ACK it)."""
        cseq = 2 if auth else 1
        body = self._authenticated_invite(*auth) if auth else self._invite(1)
        body += (
            '  <recv response="100" optional="true"/>\n  <recv response="180" optional="true"/>\n'
            f'  <recv response="{status}"/>\n' + self._fmt(_ACK, cseq)
        )
        return await self._run(body, limit)

    async def call_unanswered(self, limit: float = 10.0) -> PhoneResult:
        """Call and expect no answer at all (sipp times out: a non-zero exit is the expected outcome)."""
        body = self._invite(1) + '  <recv response="200"/>\n'
        return await self._run(body, limit)

    async def call_and_cancel(self, after_ms: int, limit: float = 30.0) -> PhoneResult:
        """Call, let it ring for `after_ms`, then CANCEL."""
        body = (
            self._invite(1)
            + '  <recv response="100" optional="true"/>\n  <recv response="180"/>\n'
            + f'  <pause milliseconds="{after_ms}"/>\n'
            + self._fmt(_CANCEL)
            + self._fmt(_ACK)
        )
        return await self._run(body, limit)

    async def _run(self, body: str, limit: float) -> PhoneResult:
        self._runs += 1
        where = [f"{LOOPBACK}:{self.bridge_port}", "-p", str(self.port)]
        if self.call_id is not None:
            where += ["-cid_str", self.call_id.replace("%", "%%")]
        return await run_scenario(self.workdir, f"phone{self._runs}", body, where, limit)


async def run_scenario(workdir: Path, name: str, body: str, where: list[str], limit: float) -> PhoneResult:
    """Run one sipp scenario (`body`, the XML inside <scenario>) for one call; `where` is the remote address and
    local port arguments. sipp's messages go to ``<name>-messages.log`` and into the result."""
    scenario = workdir / f"{name}.xml"
    scenario.write_text(f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n{body}</scenario>\n')
    messages = workdir / f"{name}-messages.log"
    args = [
        *where, "-sf", str(scenario), "-i", LOOPBACK, "-m", "1", "-timeout", f"{int(limit)}s", "-timeout_error",
        "-nostdin", "-trace_msg", "-message_file", str(messages),
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        str(require_binary("sipp")), *args, cwd=workdir,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), limit + 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = messages.read_text(errors="replace") if messages.exists() else ""
    return PhoneResult(proc.returncode or 0, stderr.decode(errors="replace"), text)
