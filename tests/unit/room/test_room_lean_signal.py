"""The lean transport's join URL: /rtc/v1 with our join request in it."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

from livekit.protocol import models, rtc

from sipbridge.room.lean.signal import CLIENT_PROTOCOL, join_url


def _join_request(url: str) -> rtc.JoinRequest:
    (param,) = parse_qs(urlsplit(url).query)["join_request"]
    wrapped = rtc.WrappedJoinRequest.FromString(base64.urlsafe_b64decode(param))
    return rtc.JoinRequest.FromString(wrapped.join_request)


def test_join_url_for_every_form_of_ws_url() -> None:
    assert join_url("ws://127.0.0.1:7880").startswith("ws://127.0.0.1:7880/rtc/v1?join_request=")
    assert join_url("https://lk.example.com/").startswith("wss://lk.example.com/rtc/v1?")
    assert join_url("http://lk.example.com/base").startswith("ws://lk.example.com/base/rtc/v1?")


def test_the_join_request_names_us_and_leaves_subscribing_to_us() -> None:
    request = _join_request(join_url("ws://127.0.0.1:7880"))
    assert request.client_info.protocol == CLIENT_PROTOCOL
    assert request.client_info.sdk == models.ClientInfo.PYTHON
    assert not request.connection_settings.auto_subscribe  # we subscribe to audio tracks only


def test_a_resume_names_the_participant_and_why() -> None:
    url = join_url("ws://127.0.0.1:7880", resume_sid="PA_abc", reason=models.ReconnectReason.RR_SIGNAL_DISCONNECTED)
    request = _join_request(url)
    assert request.reconnect and request.participant_sid == "PA_abc"
    assert request.reconnect_reason == models.ReconnectReason.RR_SIGNAL_DISCONNECTED


def test_a_rejoin_asks_for_the_attributes_the_token_does_not_give() -> None:
    request = _join_request(join_url("ws://127.0.0.1:7880", attributes={"sip.callStatus": "active"}))
    assert dict(request.participant_attributes) == {"sip.callStatus": "active"}
    assert not request.reconnect and not request.participant_sid
