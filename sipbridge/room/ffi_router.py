"""O(1) delivery of our audio streams' frames and our frame captures' completions, ahead of the SDK's fan-out.

The livekit rtc SDK (1.2.0) hands every FFI event to one `FfiQueue.put`, which offers it to every subscriber:
each `AudioStream`, each in-flight `AudioSource.capture_frame` and each `Room`, and each of those wakes up on
its event loop to find that most events are not its own. With N calls in a process that is O(N^2) work per
second. The router sits in front of `put`: events of the stream handles and capture ids it registered go
straight to their owner (one dict lookup, one loop wake-up); every other event reaches the SDK as before, so
SDK objects in the same process keep working.

This leans on SDK internals of the pinned livekit==1.2.0 (`FfiClient.instance.queue`, the FFI protobufs,
`_ffi_handle`); tests/unit/room/test_room_ffi_router.py checks them.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
from collections.abc import Callable

import numpy as np
from livekit import rtc
from livekit.rtc._ffi_client import FfiClient, FfiHandle, FfiQueue
from livekit.rtc._proto import audio_frame_pb2, ffi_pb2

from sipbridge.media.codecs import Pcm

FfiEvent = ffi_pb2.FfiEvent

OWN_ASYNC_IDS_FROM = 1 << 62
"""Capture ids we choose ourselves (the FFI accepts a client's id), far above the FFI's own counter."""


class CaptureError(Exception):
    """The SDK refused a captured frame."""


class FfiRouter:
    """The process's one router; `FfiRouter.get()` installs it in front of the SDK's queue on first use."""

    _instance: FfiRouter | None = None

    def __init__(self, queue: FfiQueue[FfiEvent]) -> None:
        self._queue = queue
        self._streams: dict[int, tuple[asyncio.AbstractEventLoop, Callable[[FfiEvent], None]]] = {}
        self._captures: dict[int, asyncio.Future[str]] = {}
        self._async_ids = itertools.count(OWN_ASYNC_IDS_FROM)
        self.routed_events = 0
        """Events delivered by the router rather than the SDK's fan-out, for benchmarks and tests."""
        queue.put = self._put  # type: ignore[method-assign,assignment]

    @classmethod
    def get(cls) -> FfiRouter:
        if cls._instance is None:
            cls._instance = FfiRouter(FfiClient.instance.queue)
        return cls._instance

    def _put(self, event: FfiEvent) -> None:
        """Runs on the SDK's callback thread for every FFI event."""
        which = event.WhichOneof("message")
        if which == "audio_stream_event":
            stream = self._streams.get(event.audio_stream_event.stream_handle)
            if stream is not None:
                loop, handler = stream
                self.routed_events += 1
                loop.call_soon_threadsafe(handler, event)
                return
        elif which == "capture_audio_frame":
            waiter = self._captures.pop(event.capture_audio_frame.async_id, None)
            if waiter is not None:
                self.routed_events += 1
                waiter.get_loop().call_soon_threadsafe(_settle, waiter, event.capture_audio_frame.error)
                return
        FfiQueue.put(self._queue, event)

    def add_stream(self, handle: int, handler: Callable[[FfiEvent], None]) -> None:
        """Sends the events of audio stream `handle` to `handler`, on the calling thread's event loop."""
        self._streams[handle] = (asyncio.get_running_loop(), handler)

    def remove_stream(self, handle: int) -> None:
        self._streams.pop(handle, None)

    def expect_capture(self) -> tuple[int, asyncio.Future[str]]:
        """A fresh capture id and the future its completion (an error text, empty on success) will settle."""
        async_id = next(self._async_ids)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._captures[async_id] = waiter
        return async_id, waiter

    def forget_capture(self, async_id: int) -> None:
        self._captures.pop(async_id, None)


def _settle(waiter: asyncio.Future[str], error: str) -> None:
    if not waiter.done():
        waiter.set_result(error)


async def capture_frame(router: FfiRouter, source: rtc.AudioSource, frame: Pcm) -> None:
    """`source.capture_frame` without the fan-out: one FFI request, completion routed by our own capture id.

    The FFI copies the samples before the request returns, so `frame` need not outlive this call's first step.
    Waits while the source's queue is full, as the SDK's own method does.
    """
    samples = np.ascontiguousarray(frame, dtype=np.int16)
    async_id, completed = router.expect_capture()
    request = ffi_pb2.FfiRequest()
    capture = request.capture_audio_frame
    capture.source_handle = source._ffi_handle.handle
    capture.request_async_id = async_id
    capture.buffer.data_ptr = samples.ctypes.data
    capture.buffer.sample_rate = source.sample_rate
    capture.buffer.num_channels = 1
    capture.buffer.samples_per_channel = len(samples)
    try:
        response = FfiClient.instance.request(request)
    except BaseException:
        router.forget_capture(async_id)
        raise
    if response.capture_audio_frame.async_id != async_id:
        router.forget_capture(async_id)
        raise CaptureError(f"the FFI answered capture {async_id} as {response.capture_audio_frame.async_id}")
    # if this wait is cancelled the id stays registered: the FFI always completes a capture, and the router then
    # drops the entry instead of passing the completion to every SDK subscriber
    error = await completed
    if error:
        raise CaptureError(error)


class AudioTrackReader:
    """Reads one remote audio track as mono int16 frames of `frame_ms` at `sample_rate`, handed to `on_frame`
    on the event loop as they arrive; `on_end` runs if the track's stream ends by itself."""

    def __init__(
        self,
        router: FfiRouter,
        track: rtc.Track,
        sample_rate: int,
        frame_ms: int,
        on_frame: Callable[[Pcm], None],
        on_end: Callable[[], None],
    ) -> None:
        self._router = router
        self._on_frame = on_frame
        self._on_end = on_end
        self._closed = False
        request = ffi_pb2.FfiRequest()
        new_stream = request.new_audio_stream
        new_stream.track_handle = track._ffi_handle.handle
        new_stream.type = audio_frame_pb2.AudioStreamType.AUDIO_STREAM_NATIVE
        new_stream.sample_rate = sample_rate
        new_stream.num_channels = 1
        new_stream.frame_size_ms = frame_ms
        stream = FfiClient.instance.request(request).new_audio_stream.stream
        self._handle = FfiHandle(stream.handle.id)
        # frames the FFI sends before this line find no route and are lost: at most the first few milliseconds
        router.add_stream(self._handle.handle, self._on_event)

    def close(self) -> None:
        """Stops the stream. The route stays until the FFI's end-of-stream, so late frames are still released."""
        if not self._closed:
            self._closed = True
            self._handle.dispose()

    def _on_event(self, event: FfiEvent) -> None:
        stream_event = event.audio_stream_event
        if stream_event.HasField("frame_received"):
            owned = stream_event.frame_received.frame
            count = owned.info.num_channels * owned.info.samples_per_channel
            samples = np.ctypeslib.as_array((ctypes.c_int16 * count).from_address(owned.info.data_ptr)).copy()
            FfiHandle(owned.handle.id).dispose()
            if not self._closed:
                self._on_frame(samples)
        elif stream_event.HasField("eos"):
            self._router.remove_stream(self._handle.handle)
            if not self._closed:
                self.close()
                self._on_end()
