"""Filters and paging of the List* methods, as livekit-server applies them.

Items are sorted by ID. A list of IDs keeps only those IDs; a list of numbers keeps trunks that answer one of them
(compared the way LiveKit normalises numbers), and trunks with no numbers at all; a list of trunk IDs keeps dispatch
rules for one of them, and rules for every trunk. ``page.after_id`` starts after that ID, ``page.limit`` caps the count.

Items arrive in ID order (the store hands them out so, decoding each as it is reached), so a page stops reading
once it is full.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from livekit.protocol.models import Pagination
from livekit.protocol.sip import (
    ListSIPDispatchRuleRequest,
    ListSIPInboundTrunkRequest,
    ListSIPOutboundTrunkRequest,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPOutboundTrunkInfo,
)

from dispatch.numbers import number_in

T = TypeVar("T")


def paged(items: Iterable[T], page: Pagination | None, key: Callable[[T], str]) -> list[T]:
    """The page of ``items`` (in ``key`` order) that ``page`` asks for."""
    if page is None:
        return list(items)
    after = (item for item in items if key(item) > page.after_id)
    return list(itertools.islice(after, page.limit) if page.limit > 0 else after)


def after_id(request: ListSIPInboundTrunkRequest | ListSIPOutboundTrunkRequest | ListSIPDispatchRuleRequest) -> str:
    """Where the store may start reading for this request."""
    return request.page.after_id if request.HasField("page") else ""


def _answers_one_of(trunk_numbers: Sequence[str], wanted: Sequence[str]) -> bool:
    return not wanted or not trunk_numbers or any(number_in(n, wanted) for n in trunk_numbers)


def _page_of(
    request: ListSIPInboundTrunkRequest | ListSIPOutboundTrunkRequest | ListSIPDispatchRuleRequest,
) -> Pagination | None:
    return request.page if request.HasField("page") else None


Trunk = TypeVar("Trunk", SIPInboundTrunkInfo, SIPOutboundTrunkInfo)


def list_trunks(
    items: Iterable[Trunk], request: ListSIPInboundTrunkRequest | ListSIPOutboundTrunkRequest
) -> list[Trunk]:
    kept = (
        t
        for t in items
        if (not request.trunk_ids or t.sip_trunk_id in request.trunk_ids)
        and _answers_one_of(t.numbers, request.numbers)
    )
    return paged(kept, _page_of(request), lambda t: t.sip_trunk_id)


def list_rules(items: Iterable[SIPDispatchRuleInfo], request: ListSIPDispatchRuleRequest) -> list[SIPDispatchRuleInfo]:
    kept = (
        r
        for r in items
        if (not request.dispatch_rule_ids or r.sip_dispatch_rule_id in request.dispatch_rule_ids)
        and (not request.trunk_ids or not r.trunk_ids or any(t in request.trunk_ids for t in r.trunk_ids))
    )
    return paged(kept, _page_of(request), lambda r: r.sip_dispatch_rule_id)
