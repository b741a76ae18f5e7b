"""Fixtures for call tests: a bridge joined to the shared livekit-server, a phone (sipp + RTP socket), and a
LiveKit API client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from harness.bridge import BridgeProcess, api_client
from harness.processes import LiveKitServer
from harness.rtp_phone import RtpPhone
from harness.sipp_phone import SippPhone
from livekit import api


@pytest.fixture
def call_bridge(tmp_path: Path, livekit_server: LiveKitServer) -> Iterator[BridgeProcess]:
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server) as bridge:
        yield bridge


@pytest.fixture
async def bridge_api(call_bridge: BridgeProcess) -> AsyncIterator[api.LiveKitAPI]:
    """The SIP API of the bridge (trunks and rules live there in standalone mode)."""
    async with api_client(call_bridge) as client:
        yield client


@pytest.fixture
def sipp_phone(tmp_path: Path, call_bridge: BridgeProcess, rtp_phone: RtpPhone) -> SippPhone:
    return SippPhone(tmp_path / "sipp", call_bridge.sip_port, rtp_phone.port)
