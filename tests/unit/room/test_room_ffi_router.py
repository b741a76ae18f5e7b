"""The FfiRouter in front of a real SDK FfiQueue: our streams' and captures' events go straight to their owner,
everything else still reaches the SDK's subscribers. Events are the SDK's own protobufs, put from another thread
as the FFI's callback thread does."""

from __future__ import annotations

import asyncio

from livekit.rtc._ffi_client import FfiClient, FfiQueue
from livekit.rtc._proto import ffi_pb2

from sipbridge.room.ffi_router import OWN_ASYNC_IDS_FROM, FfiRouter


def _stream_eos(handle: int) -> ffi_pb2.FfiEvent:
    event = ffi_pb2.FfiEvent()
    event.audio_stream_event.stream_handle = handle
    event.audio_stream_event.eos.SetInParent()
    return event


def _capture_done(async_id: int, error: str = "") -> ffi_pb2.FfiEvent:
    event = ffi_pb2.FfiEvent()
    event.capture_audio_frame.async_id = async_id
    if error:
        event.capture_audio_frame.error = error
    return event


def _drain(queue: asyncio.Queue[ffi_pb2.FfiEvent]) -> list[ffi_pb2.FfiEvent]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def _settle() -> None:
    """Lets the loop run the callbacks the 'FFI thread' scheduled with call_soon_threadsafe."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_registered_streams_events_go_only_to_its_handler() -> None:
    queue: FfiQueue[ffi_pb2.FfiEvent] = FfiQueue()
    router = FfiRouter(queue)
    sdk_subscriber = queue.subscribe()
    received: list[ffi_pb2.FfiEvent] = []
    router.add_stream(7, received.append)

    await asyncio.to_thread(queue.put, _stream_eos(7))
    await asyncio.to_thread(queue.put, _stream_eos(8))
    await _settle()

    assert [e.audio_stream_event.stream_handle for e in received] == [7]
    assert [e.audio_stream_event.stream_handle for e in _drain(sdk_subscriber)] == [8]
    assert router.routed_events == 1

    router.remove_stream(7)
    await asyncio.to_thread(queue.put, _stream_eos(7))
    await _settle()
    assert len(received) == 1 and len(_drain(sdk_subscriber)) == 1


async def test_a_capture_completion_settles_its_waiter_and_nothing_else() -> None:
    queue: FfiQueue[ffi_pb2.FfiEvent] = FfiQueue()
    router = FfiRouter(queue)
    sdk_subscriber = queue.subscribe()
    ok_id, ok = router.expect_capture()
    bad_id, bad = router.expect_capture()
    assert OWN_ASYNC_IDS_FROM <= ok_id < bad_id

    for event in (_capture_done(bad_id, "queue closed"), _capture_done(ok_id), _capture_done(12)):
        await asyncio.to_thread(queue.put, event)
    await _settle()

    assert (await ok, await bad) == ("", "queue closed")
    assert [e.capture_audio_frame.async_id for e in _drain(sdk_subscriber)] == [12]
    # a completion arriving twice, or for a capture given up, passes on to the SDK harmlessly
    await asyncio.to_thread(queue.put, _capture_done(ok_id))
    await _settle()
    assert [e.capture_audio_frame.async_id for e in _drain(sdk_subscriber)] == [ok_id]


async def test_a_given_up_capture_is_forgotten() -> None:
    queue: FfiQueue[ffi_pb2.FfiEvent] = FfiQueue()
    router = FfiRouter(queue)
    async_id, waiter = router.expect_capture()
    waiter.cancel()
    router.forget_capture(async_id)
    sdk_subscriber = queue.subscribe()
    await asyncio.to_thread(queue.put, _capture_done(async_id))
    await _settle()
    assert len(_drain(sdk_subscriber)) == 1


async def test_other_events_reach_every_sdk_subscriber_unchanged() -> None:
    queue: FfiQueue[ffi_pb2.FfiEvent] = FfiQueue()
    FfiRouter(queue)
    first, second = queue.subscribe(), queue.subscribe()
    event = ffi_pb2.FfiEvent()
    event.room_event.room_handle = 3
    event.room_event.eos.SetInParent()
    await asyncio.to_thread(queue.put, event)
    await _settle()
    assert _drain(first) == [event] and _drain(second) == [event]


def test_the_process_router_sits_in_front_of_the_sdks_queue() -> None:
    router = FfiRouter.get()
    assert FfiRouter.get() is router
    assert FfiClient.instance.queue.put == router._put
