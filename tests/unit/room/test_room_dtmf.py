"""DTMF digits and RFC 4733 codes, both ways."""

from __future__ import annotations

import pytest

from sipbridge.room.dtmf import DIGITS, dtmf_code, dtmf_digit


def test_codes_follow_rfc_4733() -> None:
    assert [dtmf_code(d) for d in "0123456789"] == list(range(10))
    assert (dtmf_code("*"), dtmf_code("#")) == (10, 11)
    assert [dtmf_code(d) for d in "ABCD"] == [12, 13, 14, 15]
    assert [dtmf_code(d) for d in "abcd"] == [12, 13, 14, 15]


@pytest.mark.parametrize("bad", ["", "E", "12", " ", "w"])
def test_code_rejects_non_digits(bad: str) -> None:
    with pytest.raises(ValueError):
        dtmf_code(bad)


def test_digit_round_trips_every_code() -> None:
    assert [dtmf_digit(dtmf_code(d)) for d in DIGITS] == list(DIGITS)


def test_digit_prefers_the_senders_digit_and_falls_back_to_the_code() -> None:
    assert dtmf_digit(11, "#") == "#"
    assert dtmf_digit(5, "") == "5"
    assert dtmf_digit(12, "a") == "A"
    assert dtmf_digit(99, "") == ""
    assert dtmf_digit(3, "x") == "3"
