"""The inspector in a real browser (headless Chromium): sign in with a token, the live-calls page lists a call in
progress and an ended one, a call's page draws one ladder arrow per message and an arrow leads to its message.
Screenshots go to ``test-artifacts/inspector/`` (``$SIPBRIDGE_TEST_ARTIFACTS`` elsewhere)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from harness.browser import HeadlessBrowser
from harness.impaired_phone import ImpairedRtpPhone
from harness.inbound_setup import configure, direct
from harness.inspector import InspectedBridge, InspectorClient, admin_token
from harness.participant import TestParticipant
from harness.processes import LiveKitServer
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api

pytestmark = pytest.mark.integration

ARTIFACTS = Path(os.environ.get("SIPBRIDGE_TEST_ARTIFACTS") or Path(__file__).parents[3] / "test-artifacts")


async def test_the_pages_in_a_browser_show_live_and_ended_calls_and_one_arrow_per_message(
    livekit_server: LiveKitServer,
    inspected_bridge: InspectedBridge,
    bridge_api: api.LiveKitAPI,
    inspector: InspectorClient,
    tmp_room: str,
    tmp_path: Path,
) -> None:
    await configure(bridge_api, direct(tmp_room))
    bad_line, good_line = ImpairedRtpPhone(loss=0.05, jitter_ms=30), RtpPhone()
    await bad_line.start()
    await good_line.start()
    async with TestParticipant(
        livekit_server.ws_url, livekit_server.api_key, livekit_server.api_secret, tmp_room, "agent"
    ) as agent:
        await agent.publish_tone(1000)
        bad_line.play_tone(440)
        ended = SippPhone(tmp_path / "ended", inspected_bridge.sip_port, bad_line.port, call_id="ended@browser.test")
        (await ended.call(hold_ms=11000)).check()
        live = SippPhone(tmp_path / "live", inspected_bridge.sip_port, good_line.port, call_id="live@browser.test")
        live_call = asyncio.create_task(live.call(hold_ms=15000))
        shown = await inspector.wait_call(lambda c: c["call_id"] == "live@browser.test" and c["status"] == "active",
                                          "live call active")  # fmt: skip
        past = await inspector.wait_call(lambda c: c["call_id"] == "ended@browser.test" and c["ended"], "ended")
        detail = await inspector.json(f"/api/calls/{past['id']}")

        async with HeadlessBrowser(tmp_path / "chromium") as browser:
            base = inspected_bridge.inspector_url
            await browser.goto(base + "/")
            assert await browser.evaluate("document.title") == "sign in: sipbridge inspector"  # 401: the form
            token = admin_token(inspected_bridge.api_key, inspected_bridge.api_secret)
            await browser.evaluate(
                f"document.querySelector('textarea[name=token]').value = {json.dumps(token)};"
                "document.querySelector('form').submit(); true"
            )
            await browser.wait_loaded()
            assert await browser.evaluate("document.title") == "sipbridge inspector"
            live_rows = await browser.evaluate(
                "[...document.querySelectorAll('#live tr')].slice(1).map(r => r.innerText)"
            )
            ended_rows = await browser.evaluate("document.querySelectorAll('#ended tr').length - 1")
            assert len(live_rows) == 1 and "active" in live_rows[0] and "PCMU" in live_rows[0], live_rows
            assert ended_rows >= 1
            await browser.screenshot(ARTIFACTS / "inspector" / "live-calls.png")

            await browser.goto(f"{base}/calls/{past['id']}")
            arrows = await browser.evaluate("document.querySelectorAll('svg.ladder g.arrow').length")
            assert arrows == len(detail["messages"]) > 5
            columns = await browser.evaluate(
                "[...document.querySelectorAll('svg.ladder > text')].map(t => t.textContent)"
            )
            assert "sipbridge" in columns and len(columns) == 2  # the phone and the bridge
            plots = await browser.evaluate("document.querySelectorAll('svg.plot polyline').length")
            assert plots >= 3  # MOS, loss and jitter over the call
            await browser.screenshot(ARTIFACTS / "inspector" / "call-page.png")
            await browser.evaluate("document.querySelectorAll('svg.ladder a')[3].dispatchEvent("
                                   "new MouseEvent('click', {bubbles: true})); true")  # fmt: skip
            target = await browser.evaluate("document.querySelector(':target').querySelector('summary').innerText")
            assert target.startswith(f"#3 {detail['messages'][3]['label']}")
        assert shown["status"] == "active"
        (await live_call).check()
    await bad_line.close()
    await good_line.close()
