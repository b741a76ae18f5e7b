"""A bridge and a livekit-server on one Redis see the same trunks and rules, through the real `lk` CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import docs_examples as docs
from harness.bridge import BridgeProcess
from harness.lk import LkRunner
from harness.processes import LiveKitServer, RedisServer
from harness.sipapi import clear_sip_tables, created_id, listed
from livekit.protocol.sip import ListSIPDispatchRuleResponse, ListSIPInboundTrunkResponse

pytestmark = pytest.mark.integration


@pytest.fixture
def shared_bridge(
    tmp_path: Path, redis_server: RedisServer, livekit_server_redis: LiveKitServer
) -> Iterator[BridgeProcess]:
    clear_sip_tables(redis_server)
    with BridgeProcess(tmp_path / "bridge", livekit=livekit_server_redis, redis=redis_server) as bridge:
        yield bridge


def test_configuration_is_shared_both_ways(
    lk: LkRunner, shared_bridge: BridgeProcess, livekit_server_redis: LiveKitServer
) -> None:
    via_bridge = created_id(lk("sip", "inbound", "create", "t.json", target=shared_bridge,
                               input_files={"t.json": docs.INBOUND_TRUNK}).stdout)  # fmt: skip
    via_server = created_id(lk("sip", "inbound", "create", "t.json", target=livekit_server_redis,
                               input_files={"t.json": docs.INBOUND_TRUNK_ALLOWED_NUMBERS}).stdout)  # fmt: skip
    rule = created_id(lk("sip", "dispatch", "create", "r.json", target=livekit_server_redis,
                         input_files={"r.json": docs.DISPATCH_INDIVIDUAL_AGENT}).stdout)  # fmt: skip

    for target in (shared_bridge, livekit_server_redis):
        out = lk("sip", "inbound", "list", "--json", target=target).stdout
        trunks = {t.sip_trunk_id: t for t in listed(out, ListSIPInboundTrunkResponse)}
        assert set(trunks) == {via_bridge, via_server}
        assert trunks[via_bridge].krisp_enabled
        assert list(trunks[via_server].allowed_numbers) == ["+13105550100", "+17145550100"]
        out = lk("sip", "dispatch", "list", "--json", target=target).stdout
        rules = listed(out, ListSIPDispatchRuleResponse)
        assert [(r.sip_dispatch_rule_id, r.room_config.agents[0].agent_name) for r in rules] == [
            (rule, "inbound-agent")
        ]

    # A conflict with a record the other side created is caught on either side.
    clash = lk("sip", "dispatch", "create", "r.json", target=shared_bridge, check=False,
               input_files={"r.json": docs.DISPATCH_DIRECT})  # fmt: skip
    assert clash.returncode != 0 and rule in clash.stderr + clash.stdout

    lk("sip", "inbound", "delete", via_server, target=shared_bridge)
    out = lk("sip", "inbound", "list", "--json", target=livekit_server_redis).stdout
    assert [t.sip_trunk_id for t in listed(out, ListSIPInboundTrunkResponse)] == [via_bridge]
    assert not livekit_server_redis.grep_log(r"panic")
