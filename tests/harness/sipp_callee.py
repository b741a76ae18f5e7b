"""The far end of an outbound call: sipp as the callee (or the carrier in front of it), one scenario per test.

sipp listens on its own loopback port, which a test puts in the outbound trunk's ``address``. It rings, answers
with an SDP naming the `RtpPhone`'s port (so the test's own socket carries the media), rejects, challenges for
digest credentials, or lets the call ring until it is cancelled. Everything sipp sends and receives is in
``messages`` of the result, for checks on headers.
"""

from __future__ import annotations

from pathlib import Path

from .ports import LOOPBACK, free_tcp_udp_port
from .sipp_phone import AWAIT_BYE, SDP, PhoneResult, run_scenario

_TO_TAG = "[pid]SIPpTag01[call_number]"

_RESPONSE = """\
  <send{retrans}>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:]{tag}
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      {headers}{body}
    ]]>
  </send>
"""


class SippCallee:
    """sipp waiting for one INVITE on `port`; what it does with it is chosen by the method called."""

    def __init__(self, workdir: Path, rtp_port: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_tcp_udp_port()
        self.rtp_port = rtp_port
        self._runs = 0

    @property
    def address(self) -> str:
        """What goes in the outbound trunk's ``address``."""
        return f"{LOOPBACK}:{self.port}"

    def _respond(self, status: str, *, sdp: bool = False, headers: dict[str, str] | None = None) -> str:
        lines = "".join(f"{k}: {v}\n      " for k, v in (headers or {}).items())
        body = SDP.format(rtp_port=self.rtp_port) if sdp else "Content-Length: 0\n"
        retrans = ' retrans="500"' if status.startswith("200") and sdp else ""
        tag = "" if status.startswith("100") else f";tag={_TO_TAG}"
        return _RESPONSE.format(status=status, retrans=retrans, tag=tag, headers=lines, body=body)

    def _invite(self, auth: tuple[str, str] | None) -> str:
        if auth is None:
            return '  <recv request="INVITE" crlf="true"/>\n'
        user, password = auth
        # 401 without qop: sipp's verifyauth reads only an Authorization header and checks the RFC 2069 form
        challenge = 'Digest realm="carrier.test", nonce="4f1a9c", algorithm=MD5'
        challenge = self._respond("401 Unauthorized", headers={"WWW-Authenticate": challenge})
        return (
            '  <recv request="INVITE" crlf="true"/>\n' + challenge + '  <recv request="ACK"/>\n'
            '  <recv request="INVITE" check_it="true">\n'
            f'    <action><verifyauth assign_to="authvalid" username="{user}" password="{password}"/></action>\n'
            "  </recv>\n"
            '  <nop hide="true" test="authvalid" next="authorised"/>\n'
            + self._respond("403 Forbidden")
            + '  <recv request="ACK" next="done"/>\n'
            '  <label id="authorised"/>\n'
        )

    async def answer(
        self,
        *,
        ring_ms: int = 300,
        early_media: bool = False,
        auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        limit: float = 90.0,
    ) -> PhoneResult:
        """Ring (with SDP when `early_media`), answer, then wait for the bridge's BYE."""
        ring = self._respond("183 Session Progress", sdp=True) if early_media else self._respond("180 Ringing")
        body = (
            self._invite(auth)
            + ring
            + f'  <pause milliseconds="{ring_ms}"/>\n'
            + self._respond("200 OK", sdp=True, headers=headers)
            + '  <recv request="ACK"/>\n'
            + AWAIT_BYE
        )
        return await self._run(body, limit)

    async def reject(self, status: str, limit: float = 30.0) -> PhoneResult:
        """Ring briefly, then answer the INVITE with `status` (e.g. "486 Busy Here")."""
        body = (
            self._invite(None)
            + self._respond("180 Ringing")
            + '  <pause milliseconds="200"/>\n'
            + self._respond(status)
            + '  <recv request="ACK"/>\n'
        )
        return await self._run(body, limit)

    async def ring_until_cancelled(self, limit: float = 60.0) -> PhoneResult:
        """Ring and never answer; expect CANCEL, answer it 200 and the INVITE 487."""
        body = (
            '  <recv request="INVITE" crlf="true">\n'
            '    <action><ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:"'
            ' assign_to="junk,seq"/></action>\n'
            "  </recv>\n"
            + self._respond("180 Ringing")
            + '  <recv request="CANCEL"/>\n'
            + self._respond("200 OK")
            + self._respond("487 Request Terminated").replace("[last_CSeq:]", "CSeq: [$seq] INVITE")
            + '  <recv request="ACK"/>\n'
            + '  <Reference variables="junk"/>\n'
        )
        return await self._run(body, limit)

    async def _run(self, body: str, limit: float) -> PhoneResult:
        self._runs += 1
        body += '  <label id="done"/>\n'
        return await run_scenario(self.workdir, f"callee{self._runs}", body, ["-p", str(self.port)], limit)
