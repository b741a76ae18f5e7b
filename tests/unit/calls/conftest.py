"""The call-flow tests run on `VirtualClockLoop`: the flows' timeouts (ringing, PIN, media, the 24 h cap) pass in
microseconds of real time, in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from virtual_clock import VirtualClockLoop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    return {"virtual-clock": VirtualClockLoop}
