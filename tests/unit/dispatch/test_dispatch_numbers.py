"""Phone number normalisation: the forms Twilio, Telnyx and people use compare equal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.numbers import normalize_number, number_in, same_number


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("", ""),
        ("123", "+123"),
        ("+123", "+123"),
        ("user", "user"),
        ("alice+1", "alice+1"),
        ("(123) 456 7890", "+1234567890"),
        ("+1-510-555-0100", "+15105550100"),
        ("15105550100", "+15105550100"),  # Telnyx
        ("+15105550100", "+15105550100"),  # Twilio
        ("1510555010x", "1510555010x"),
        ("١٢٣", "١٢٣"),  # only ASCII digits are a phone number
        ("123\n", "123\n"),
    ],
)
def test_normalize(raw: str, normalized: str) -> None:
    assert normalize_number(raw) == normalized


def test_same_number_and_membership() -> None:
    assert same_number("15105550100", "+15105550100")
    assert same_number("alice", "alice")
    assert not same_number("alice", "bob")
    assert not same_number("+15105550100", "+15105550101")
    assert number_in("15105550100", ["+1999", "+1 510 555 0100"])
    assert not number_in("15105550100", [])


@given(st.from_regex(r"\+?[0-9][0-9 ()-]{0,14}", fullmatch=True))
def test_normalisation_is_idempotent_and_strips_punctuation(number: str) -> None:
    normalized = normalize_number(number)
    assert normalize_number(normalized) == normalized
    assert normalized.startswith("+") and normalized[1:].isdigit()
