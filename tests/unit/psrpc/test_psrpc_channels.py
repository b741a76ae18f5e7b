"""Channel names must be byte-for-byte what Go's psrpc computes, or the two sides never hear each other."""

from __future__ import annotations

import pytest

from sipbridge.psrpc import channels


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ("CreateSIPParticipant", "CreateSIPParticipant"),
        ("SCL_Ab3xYz09_", "SCL_Ab3xYz09_"),
        ("us-east", "usu+002deast"),
        ("a.b c", "au+002ebu+0020c"),
        ("a|b", "au+007cb"),  # the separator itself cannot appear unescaped
        ("é", "u+00e9"),  # only ASCII letters and digits are plain
        ("٣", "u+0663"),  # an Arabic-Indic digit is not [0-9]
        ("😀", "U+0001f600"),  # above U+FFFF: U+ and eight digits
        ("\ud800", "u+fffd"),  # a lone surrogate is not UTF-8; Go sees U+FFFD
        ("", ""),
    ],
)
def test_sanitize_escapes_everything_outside_word_characters(part: str, expected: str) -> None:
    assert channels.sanitize(part) == expected


def test_empty_parts_add_nothing_not_even_a_separator() -> None:
    assert channels.join("a", "", "b") == "a|b"
    assert channels.join("", "b") == "b"
    assert channels.join("a", (), "b") == "a|b"
    assert channels.join("a", ("",), "b") == "a|b"
    assert channels.join("a", ("", ""), "b") == "a|b"


def test_only_an_empty_last_part_leaves_a_trailing_separator() -> None:
    # As in Go: the separator is written before a part when the previous one produced text.
    assert channels.join("a", "") == "a|"
    assert channels.join("a", ("x", ""), "b") == "a|x||b"


def test_topic_parts_are_spliced_in_place() -> None:
    assert channels.request("S", "M", ("t1", "t-2")) == "S|M|t1|tu+002d2|REQ"
    assert channels.request("S", "M", "t1") == "S|M|t1|REQ"  # a string is one part, not characters


def test_no_topic_is_the_same_whichever_way_it_is_spelled() -> None:
    names = {channels.request("S", "M", topic) for topic in ("", (), ("",), [])}
    assert names == {"S|M|REQ"}


def test_the_sip_channels_of_the_spec() -> None:
    assert channels.request("SIPInternal", "CreateSIPParticipant", "") == "SIPInternal|CreateSIPParticipant|REQ"
    assert channels.claim_response("SIPInternal", "CreateSIPParticipant", "") == (
        "SIPInternal|CreateSIPParticipant|RCLAIM"
    )
    assert channels.request("SIPInternal", "TransferSIPParticipant", "SCL_xxxxxxxxxxxx") == (
        "SIPInternal|TransferSIPParticipant|SCL_xxxxxxxxxxxx|REQ"
    )
    assert channels.request("SIPInternal", "CreateSIPParticipant", "us-east") == (
        "SIPInternal|CreateSIPParticipant|usu+002deast|REQ"
    )
    assert channels.claim_request("SIPInternal", "CLI_Ab3") == "SIPInternal|CLI_Ab3|CLAIM"
    assert channels.response("IOInfo", "CLI_Ab3") == "IOInfo|CLI_Ab3|RES"
    assert channels.request("IOInfo", "GetSIPTrunkAuthentication", ()) == "IOInfo|GetSIPTrunkAuthentication|REQ"
