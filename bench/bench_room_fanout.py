"""The SDK's FFI event fan-out alone, without servers or codecs: CPU to deliver one second of N calls' audio
stream events (50 per call per second) through livekit 1.2.0's FfiQueue, with and without the FfiRouter.

`sdk`: each call has what the SDK's own objects subscribe: an AudioStream (filter: audio-stream events; a task
that waits for its own handle) and a Room (filter: everything but stream events). `router`: each call's stream is
registered with the FfiRouter, the Rooms stay subscribed as before. Events are put from a separate thread, as
the FFI's callback thread does, as fast as they are taken; the figure is process CPU per second of traffic, i.e.
the share of a core N calls need for this part alone.

Run: .venv/bin/python bench/bench_room_fanout.py [--calls 10 50 100 200]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

from livekit.rtc._ffi_client import FfiQueue
from livekit.rtc._proto import ffi_pb2

from sipbridge.room.ffi_router import FfiRouter

EVENTS_PER_CALL_SECOND = 50
TRAFFIC_SECONDS = 0.5


def _frame_events(calls: int) -> list[ffi_pb2.FfiEvent]:
    events = []
    for i in range(int(calls * EVENTS_PER_CALL_SECOND * TRAFFIC_SECONDS)):
        event = ffi_pb2.FfiEvent()
        event.audio_stream_event.stream_handle = i % calls + 1
        event.audio_stream_event.frame_received.SetInParent()
        events.append(event)
    return events


def _subscribe_rooms(queue: FfiQueue[ffi_pb2.FfiEvent], calls: int) -> None:
    for _ in range(calls):
        queue.subscribe(filter_fn=lambda e: e.WhichOneof("message") not in ("audio_stream_event", "video_stream_event"))


async def _deliver(calls: int, routed: bool) -> float:
    """CPU seconds per second of traffic."""
    queue: FfiQueue[ffi_pb2.FfiEvent] = FfiQueue()
    _subscribe_rooms(queue, calls)
    events = _frame_events(calls)
    remaining = len(events)
    all_delivered = asyncio.Event()

    def delivered(_event: ffi_pb2.FfiEvent) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            all_delivered.set()

    consumers: list[asyncio.Task[None]] = []
    if routed:
        router = FfiRouter(queue)
        for handle in range(1, calls + 1):
            router.add_stream(handle, delivered)
    else:

        async def audio_stream(handle: int) -> None:
            stream_queue = queue.subscribe(filter_fn=lambda e: e.WhichOneof("message") == "audio_stream_event")
            while True:
                delivered(await stream_queue.wait_for(lambda e: e.audio_stream_event.stream_handle == handle))

        consumers = [asyncio.create_task(audio_stream(handle)) for handle in range(1, calls + 1)]
        await asyncio.sleep(0)  # let every consumer subscribe

    def ffi_thread() -> None:
        for event in events:
            queue.put(event)

    cpu_before = time.process_time()
    feeder = threading.Thread(target=ffi_thread)
    feeder.start()
    await all_delivered.wait()
    cpu = time.process_time() - cpu_before
    feeder.join()
    for consumer in consumers:
        consumer.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return cpu / TRAFFIC_SECONDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 100, 200])
    args = parser.parse_args()
    print("CPU (core-seconds per second of audio) to deliver N calls' audio-stream events, 50/s per call")
    print("calls       sdk    router   sdk/router")
    for calls in args.calls:
        sdk = asyncio.run(_deliver(calls, routed=False))
        routed = asyncio.run(_deliver(calls, routed=True))
        print(f"{calls:5d}  {sdk:8.3f}  {routed:8.3f}  {sdk / routed:10.1f}", flush=True)


if __name__ == "__main__":
    main()
