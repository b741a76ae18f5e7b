"""How a call flow waits on several things at once and stops the helpers it started."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any


async def first(waiters: Mapping[str, Awaitable[object]], limit: float | None) -> str:
    """The name of the first awaitable to finish, or "timeout"; the others are cancelled."""
    futures = {asyncio.ensure_future(w): name for name, w in waiters.items()}
    try:
        done, _ = await asyncio.wait(futures, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
    if not done:
        return "timeout"
    return futures[next(iter(done))]


async def cancel_task(task: asyncio.Task[Any] | None, log: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """Cancel a helper task and wait for it; what it failed with, if anything, goes to ``log`` (the call's)."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled ourselves, not only the helper
    except Exception:
        log.exception("call helper task %s failed", task.get_name())
