"""Phone number comparison the way LiveKit does it.

Carriers disagree on the form of a number: Twilio sends ``+15105550100``, Telnyx ``15105550100``,
and people type ``(510) 555-0100``. LiveKit normalises a number that is made only of digits, spaces,
dashes and brackets (with an optional leading ``+``) by removing the punctuation and adding a
``+``; anything else (a SIP user name such as ``alice``) is compared as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PHONE_NUMBER = re.compile(r"\+?[0-9\- ()]+")
_PUNCTUATION = str.maketrans("", "", " -()")


def normalize_number(number: str) -> str:
    """Return the canonical ``+digits`` form of a phone number, or the input unchanged if it is not one."""
    if not number or not _PHONE_NUMBER.fullmatch(number):
        return number
    digits = number.translate(_PUNCTUATION)
    return digits if digits.startswith("+") else "+" + digits


def same_number(a: str, b: str) -> bool:
    """Whether two numbers denote the same line (exactly equal, or equal once normalised)."""
    return a == b or normalize_number(a) == normalize_number(b)


def number_in(number: str, numbers: Iterable[str]) -> bool:
    """Whether ``number`` is one of ``numbers``, comparing as :func:`same_number` does."""
    return any(same_number(number, candidate) for candidate in numbers)
