"""``inspector_port`` and the ``inspector`` block of config.yaml: off and on loopback by default, bounded, and a
mistake stops start-up naming the key."""

from __future__ import annotations

import pytest

from sipbridge.config import ConfigError, HepTarget, InspectorSettings, parse_config

ENV = {"LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s", "LIVEKIT_WS_URL": "ws://127.0.0.1:7880"}


def test_off_by_default_and_on_loopback_when_turned_on() -> None:
    assert parse_config(None, ENV).inspector == InspectorSettings(port=0, listen_ip="127.0.0.1", keep_calls=200)
    on = parse_config("inspector_port: 8093\n", ENV).inspector
    assert (on.port, on.listen_ip, on.keep_calls, on.max_megabytes, on.hep) == (8093, "127.0.0.1", 200, 64, None)
    assert "inspector_port" not in parse_config("inspector_port: 8093\n", ENV).ignored_keys


def test_the_block_sets_each_of_its_keys() -> None:
    body = (
        "inspector_port: 8093\ninspector:\n  listen_ip: 0.0.0.0\n  keep_calls: 50\n  max_megabytes: 8\n"
        "  max_messages: 100\n  hep: homer.example.com:9060\n  hep_capture_id: 7\n  hep_password: k3y\n"
    )
    settings = parse_config(body, ENV).inspector
    assert settings == InspectorSettings(8093, "0.0.0.0", 50, 8, 100, HepTarget("homer.example.com", 9060), 7, "k3y")
    assert parse_config("inspector: {hep: 'hep://[2001:db8::1]:9060'}\n", ENV).inspector.hep == HepTarget(
        "2001:db8::1", 9060
    )


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("inspector_port: 70000\n", "inspector_port:"),
        ("inspector: {keep_calls: -1}\n", "inspector.keep_calls:"),
        ("inspector: {listen_ip: localhost}\n", "inspector.listen_ip:"),
        ("inspector: {hep: homer}\n", "inspector.hep:"),
        ("inspector: {keepcalls: 10}\n", "inspector.keepcalls:"),
        ("inspector: [1]\n", "inspector:"),
    ],
)
def test_a_mistake_names_its_key(body: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(body, ENV)
    assert str(error.value).startswith(key)
