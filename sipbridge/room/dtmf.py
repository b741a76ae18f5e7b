"""SIP DTMF digits and their RFC 4733 event codes, as LiveKit's `publish_dtmf` and `sip_dtmf_received` carry them."""

from __future__ import annotations

DIGITS = "0123456789*#ABCD"
"""Every DTMF digit, in RFC 4733 event-code order: 0-9 are 0-9, * is 10, # is 11, A-D are 12-15."""


def dtmf_code(digit: str) -> int:
    """The RFC 4733 event code of `digit` (A-D in either case); ValueError for anything that is not one digit."""
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return index


def dtmf_digit(code: int, digit: str = "") -> str:
    """The digit an event stands for: `digit` when the sender filled it in, else the one its `code` names.

    Senders may fill in only one of the two; an event naming neither a known digit nor a known code gives "".
    """
    if len(digit) == 1 and digit.upper() in DIGITS:
        return digit.upper()
    return DIGITS[code] if 0 <= code < len(DIGITS) else ""
