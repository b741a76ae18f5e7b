"""The polled UDP socket: datagrams drained in one go, each with the kernel's arrival time."""

from __future__ import annotations

import select
import socket
import time

from sipbridge.media.udp import DatagramCollector, PolledUdpSocket


def wait_until_arrivals_are_stamped(receiver: PolledUdpSocket) -> None:
    """Linux turns receive stamping on for the whole host a moment after the first socket asks for it (a deferred
    static-key flip); until then a datagram is stamped when it is read. Wait for a datagram stamped before it was
    read, as every one is from then on."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(500):
            sender.sendto(b"warm-up", ("127.0.0.1", receiver.port))
            assert select.select([receiver], [], [], 30)[0], "nothing arrived"
            seen_waiting_at = time.time()
            stamps = [stamp for _, _, stamp in receiver.receive()]
            if stamps and stamps[0] is not None and stamps[0] <= seen_waiting_at:
                return
            time.sleep(0.01)
    raise AssertionError("the kernel never stamped a datagram on arrival")


def test_drains_everything_waiting_with_arrival_times() -> None:
    receiver = PolledUdpSocket("127.0.0.1", 0)
    try:
        port = receiver.port
        assert receiver.receive() == []
        assert receiver.kernel_timestamps
        wait_until_arrivals_are_stamped(receiver)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sent_at = time.time()
            for i in range(3):
                sender.sendto(bytes([i]), ("127.0.0.1", port))
            assert select.select([receiver], [], [], 30)[0], "nothing arrived"
            seen_waiting_at = time.time()
            time.sleep(0.05)  # read well after arrival: the stamps must still say when they came
            received = receiver.receive()
        assert [data for data, _, _ in received] == [b"\x00", b"\x01", b"\x02"]
        assert receiver.kernel_timestamps
        assert all(source[0] == "127.0.0.1" for _, source, _ in received)
        stamps = [stamp for _, _, stamp in received if stamp is not None]
        assert len(stamps) == 3 and sorted(stamps) == stamps
        # The first was stamped before it was seen waiting, not when read 50 ms later (10 ms of clock slack).
        assert sent_at - 0.01 <= stamps[0] <= seen_waiting_at
        assert receiver.receive() == []
    finally:
        receiver.close()


def test_collector_reads_all_sockets_once_per_round_and_keeps_what_is_not_taken() -> None:
    collector = DatagramCollector()
    first, second = PolledUdpSocket("127.0.0.1", 0), PolledUdpSocket("127.0.0.1", 0)
    try:
        collector.add(first)
        collector.add(second)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for i in range(3):
                sender.sendto(bytes([i]), ("127.0.0.1", first.port))
            sender.sendto(b"x", ("127.0.0.1", second.port))
            time.sleep(0.05)  # let loopback deliver
            assert [d for d, _, _ in collector.take(first, round_key=1)] == [b"\x00", b"\x01", b"\x02"]
            sender.sendto(b"late", ("127.0.0.1", second.port))
            time.sleep(0.05)
            # the same round reads nothing new; what second got in the round waited for it
            assert [d for d, _, _ in collector.take(second, round_key=1)] == [b"x"]
            assert [d for d, _, _ in collector.take(second, round_key=2)] == [b"late"]
            for i in range(DatagramCollector.MAX_WAITING + 5):  # nobody takes these: only the newest stay
                sender.sendto(i.to_bytes(2, "big"), ("127.0.0.1", first.port))
            time.sleep(0.05)
            for round_key in range(3, 3 + 10):
                collector.take(second, round_key)
            kept = collector.take(first, round_key=99)
            assert len(kept) == DatagramCollector.MAX_WAITING
            assert kept[-1][0] == (DatagramCollector.MAX_WAITING + 4).to_bytes(2, "big")
        collector.remove(first)
        collector.remove(first)  # twice is harmless
    finally:
        first.close()
        second.close()
