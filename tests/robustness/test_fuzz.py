"""The mutation fuzzer in CI: a bounded run over the parser, the user agent and the inbound call entry, from a
fixed seed and from a fresh random one (printed on failure, so the run can be repeated). `bench/fuzz.py` runs
the same fuzzer for millions of inputs."""

from __future__ import annotations

import random

import pytest
from targets import run

FIXED_SEED = 20261203
INPUTS = 25_000


@pytest.mark.parametrize("seed", [FIXED_SEED, random.SystemRandom().randrange(1 << 32)])
def test_no_mutant_escapes(seed: int) -> None:
    tally = run(seed, INPUTS)
    assert tally.total() >= INPUTS
    assert tally.inputs["call entry"] > 0, "no mutant reached the call flow's entry: the corpus is off"
    assert not tally.escapes, (
        f"seed {seed}: {len(tally.escapes)} escapes of {tally.total()} inputs; first:\n{tally.escapes[0].replay()}"
    )
