"""The polled UDP socket: datagrams drained in one go, each with the kernel's arrival time."""

from __future__ import annotations

import socket
import time

from sipbridge.media.udp import PolledUdpSocket


def test_drains_everything_waiting_with_arrival_times() -> None:
    receiver = PolledUdpSocket("127.0.0.1", 0)
    try:
        port = receiver.port
        assert receiver.receive() == []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sent_at = time.time()
            for i in range(3):
                sender.sendto(bytes([i]), ("127.0.0.1", port))
            time.sleep(0.05)  # read well after arrival: the stamps must still say when they came
            read_at = time.time()
            received = receiver.receive()
        assert [data for data, _, _ in received] == [b"\x00", b"\x01", b"\x02"]
        assert receiver.kernel_timestamps
        for _, source, stamp in received:
            assert source[0] == "127.0.0.1"
            assert stamp is not None and sent_at - 0.01 <= stamp <= read_at - 0.04
        assert receiver.receive() == []
    finally:
        receiver.close()
