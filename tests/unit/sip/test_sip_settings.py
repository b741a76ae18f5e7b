"""Settings the config layer fills in: codec switches and the advertised address and port."""

from __future__ import annotations

from sipbridge.sip.settings import SipSettings, codecs_from_config
from sipbridge.sip.transaction import Address, address_for
from sipbridge.sip.uri import parse_uri
from sipbridge.sip.useragent import UserAgent


def test_codec_switches_keep_default_order() -> None:
    assert codecs_from_config({}) == ("G722", "PCMU", "PCMA", "opus")
    assert codecs_from_config({"G722/8000": False, "opus/48000": False}) == ("PCMU", "PCMA")
    assert codecs_from_config({"PCMA": True, "telephone-event/8000": True, "AMR-WB/16000": True})[0] == "G722"


def test_advertised_address_and_port_in_via_and_contact() -> None:
    settings = SipSettings(port=5080, advertised_port=5060, advertised_host="203.0.113.9")
    ours = UserAgent(settings, local_host="10.0.0.5").locality
    assert ours.contact(Address("UDP", "198.51.100.1", 5060)) == "<sip:sipbridge@203.0.113.9:5060>"
    assert ours.contact(Address("TCP", "198.51.100.1", 5060)) == "<sip:sipbridge@203.0.113.9:5060;transport=tcp>"
    dual = UserAgent(SipSettings(), local_host="192.0.2.5", local_host_v6="2001:db8::5").locality
    assert dual.contact(Address("UDP", "2001:db8::9", 5060)) == "<sip:sipbridge@[2001:db8::5]:5060>"
    assert dual.contact(Address("UDP", "192.0.2.9", 5060)) == "<sip:sipbridge@192.0.2.5:5060>"
    assert address_for(parse_uri("sip:a@b.example;transport=tcp"), "UDP") == Address("TCP", "b.example", 5060)
