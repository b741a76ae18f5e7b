"""RFC 3891 Replaces on the answering side: which dialog an INVITE may take over, and the refusals."""

from __future__ import annotations

from test_sip_useragent import A_HOST, B_HOST, Net, established

from sipbridge.sip.events import IncomingCall
from sipbridge.sip.transaction import Address

SOURCE = Address("UDP", A_HOST, 5060)


def replacing_invite(replaces: str, branch: str) -> bytes:
    return (
        f"INVITE sip:bob@{B_HOST}:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {A_HOST}:5060;branch={branch};rport\r\n"
        f"From: <sip:transferee@{A_HOST}>;tag=new1\r\nTo: <sip:bob@{B_HOST}>\r\nCall-ID: {branch}\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:transferee@{A_HOST}:5060>\r\nReplaces: {replaces}\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def answer_to(net: Net, replaces: str, branch: str) -> tuple[int | None, list[IncomingCall]]:
    net.b.receive_datagram(replacing_invite(replaces, branch), SOURCE, net.now)
    sent = [data for data, _ in net.b.datagrams_to_send() if branch.encode() in data]
    finals = [int(d.split()[1]) for d in sent if not d.startswith(b"SIP/2.0 100")]
    calls = [e for e in iter(net.b.next_event, None) if isinstance(e, IncomingCall)]
    return (finals[0] if finals else None), calls


def test_an_invite_naming_a_confirmed_dialog_of_ours_is_offered_as_its_replacement() -> None:
    net = Net()
    _, inbound = established(net)
    info = net.b.call_info(inbound)
    ours, theirs = info.local_tag, info.remote_tag
    net.b.next_event()
    status, calls = answer_to(net, f"{info.call_id};to-tag={ours};from-tag={theirs}", "z9hG4bKrep1")
    assert status is None and len(calls) == 1
    assert net.b.call_info(calls[0].handle).replaces == inbound


def test_refusals() -> None:
    net = Net()
    _, inbound = established(net)
    info = net.b.call_info(inbound)
    ours, theirs = info.local_tag, info.remote_tag
    assert answer_to(net, f"{info.call_id};to-tag={theirs};from-tag={ours}", "z9hG4bKrep2")[0] == 481  # tags swapped
    assert answer_to(net, f"unknown;to-tag={ours};from-tag={theirs}", "z9hG4bKrep3")[0] == 481
    early_only = f"{info.call_id};to-tag={ours};from-tag={theirs};early-only"
    assert answer_to(net, early_only, "z9hG4bKrep4")[0] == 486
    assert answer_to(net, f"{info.call_id};to-tag={ours}", "z9hG4bKrep5")[0] == 400
