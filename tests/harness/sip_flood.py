"""A SIP flood from a separate process, as an attacker sends it: junk datagrams and INVITEs that no trunk admits,
each at its own rate, for a bounded time, from several loopback source addresses.

    python tests/harness/sip_flood.py --port 5060 --junk-rate 5000 --invite-rate 200 --seconds 10

Prints one line at the end: ``sent <junk> junk, <invites> INVITEs``.
"""

from __future__ import annotations

import argparse
import random
import socket
import time

SOURCES = 20


def invite(n: int, port: int) -> bytes:
    body = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return (
        f"INVITE sip:+19995550{n % 1000:03d}@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKflood{n};rport\r\nMax-Forwards: 70\r\n"
        f"From: <sip:+1888555{n % 10000:04d}@127.0.0.1>;tag=f{n}\r\nTo: <sip:+19995550000@127.0.0.1>\r\n"
        f"Call-ID: flood-{n}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:flood@127.0.0.1:9>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--junk-rate", type=float, default=5000)
    parser.add_argument("--invite-rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    rng = random.Random(3)
    sockets = []
    for i in range(SOURCES):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.0.3.{1 + i}", 0))
        sockets.append(sock)
    target = ("127.0.0.1", args.port)
    junk = invites = 0
    start = time.monotonic()
    step = 0.01  # send in 10 ms batches
    while (now := time.monotonic()) - start < args.seconds:
        elapsed = now - start
        while junk < elapsed * args.junk_rate:
            sockets[junk % SOURCES].sendto(rng.randbytes(rng.randrange(20, 400)), target)
            junk += 1
        while invites < elapsed * args.invite_rate:
            sockets[invites % SOURCES].sendto(invite(invites, args.port), target)
            invites += 1
        time.sleep(step)
    print(f"sent {junk} junk, {invites} INVITEs", flush=True)


if __name__ == "__main__":
    main()
