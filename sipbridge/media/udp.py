"""A non-blocking UDP socket that the media cadence reads on each tick, with the kernel's arrival times.

Letting the event loop wake up for every RTP packet costs a loop iteration per packet (epoll, callback
scheduling, the transport's read path), the same order of cost as handling the packet. Profiled with 50
calls for 4 s, the loop ran ~10,000 iterations with a timer per call and datagram endpoints, and ~950 with
the shared tick and these polled sockets.
The sessions' shared 20 ms tick drains each socket instead; audio is only played at ticks anyway, so nothing
waits longer. The kernel stamps each datagram on arrival (SO_TIMESTAMPNS), so the jitter estimate stays
exact although the packet is read later.
"""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import struct
import weakref

logger = logging.getLogger(__name__)

Address = tuple[str, int]
Datagram = tuple[bytes, Address, float | None]
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux value; the module lacks the name
_TIMESPEC = struct.Struct("@qq")
MAX_DATAGRAM = 2048


class PolledUdpSocket:
    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._socket.setblocking(False)
            self._socket.bind((host, port))
        except BaseException:
            self._socket.close()
            raise
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.kernel_timestamps = True
        except OSError:
            self.kernel_timestamps = False
        self.port = int(self._socket.getsockname()[1])

    def fileno(self) -> int:
        return self._socket.fileno()

    def receive_one(self) -> Datagram | None:
        """The next waiting datagram: payload, source and arrival as a Unix time (if known); None if none."""
        while True:
            try:
                data, ancillary, _, source = self._socket.recvmsg(MAX_DATAGRAM, 64)
                break
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:  # e.g. an ICMP error queued on the socket: skip it, read on
                logger.debug("RTP receive on port %d: %s", self.port, exc)
        arrival = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                arrival = seconds + nanoseconds / 1e9
        return data, (str(source[0]), int(source[1])), arrival

    def receive(self, limit: int = 100) -> list[Datagram]:
        """Every datagram waiting, up to ``limit``."""
        received: list[Datagram] = []
        while len(received) < limit and (datagram := self.receive_one()) is not None:
            received.append(datagram)
        return received

    def send(self, data: bytes, address: Address) -> None:
        try:
            self._socket.sendto(data, address)
        except OSError as exc:  # a full buffer or an unreachable peer loses this packet only
            logger.debug("RTP send from port %d to %s: %s", self.port, address, exc)

    def close(self) -> None:
        self._socket.close()


class DatagramCollector:
    """Every media socket of an event loop in one epoll set, read in one pass per tick.

    Each round polls once (without waiting) and reads one datagram from every socket that has one, until a
    poll finds nothing: one receive call per datagram plus two polls per tick in all, where draining each
    socket in turn costs a failing receive call per socket (two per call without rtcp-mux, ~1.9 µs each
    measured). Profiled at 50 calls: 20,000 receive calls per 20,000 packets, against 60,000 before.
    """

    MAX_ROUNDS = 20
    """Datagrams read per socket and tick at most; a flood waits for the next tick rather than stalling all."""

    MAX_WAITING = 100
    """Datagrams kept per socket until its session takes them; older ones are dropped beyond."""

    _instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DatagramCollector] = weakref.WeakKeyDictionary()

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._sockets: dict[int, PolledUdpSocket] = {}
        self._inbox: dict[int, list[Datagram]] = {}
        self._round: object = None

    @classmethod
    def for_loop(cls) -> DatagramCollector:
        loop = asyncio.get_running_loop()
        if loop not in cls._instances:
            cls._instances[loop] = cls()
        return cls._instances[loop]

    def add(self, udp: PolledUdpSocket) -> None:
        self._sockets[udp.fileno()] = udp
        self._epoll.register(udp.fileno(), select.EPOLLIN)

    def remove(self, udp: PolledUdpSocket) -> None:
        """Forgets a socket (before it is closed)."""
        fd = udp.fileno()
        if self._sockets.pop(fd, None) is not None:
            self._epoll.unregister(fd)
        self._inbox.pop(fd, None)

    def take(self, udp: PolledUdpSocket, round_key: object) -> list[Datagram]:
        """What arrived for ``udp``; the first caller of a new ``round_key`` (a tick) reads all sockets."""
        if round_key != self._round:
            self._round = round_key
            self._collect()
        return self._inbox.pop(udp.fileno(), [])

    def _collect(self) -> None:
        for _ in range(self.MAX_ROUNDS):
            events = self._epoll.poll(0)
            if not events:
                return
            for fd, _ in events:
                udp = self._sockets.get(fd)
                datagram = udp.receive_one() if udp is not None else None
                if datagram is not None:
                    waiting = self._inbox.setdefault(fd, [])
                    if len(waiting) >= self.MAX_WAITING:  # nobody takes them (a call not started yet)
                        del waiting[0]
                    waiting.append(datagram)
