"""Long runs of the robustness fuzzer (tests/robustness): millions of mutants through the SIP parser, the user agent
and the inbound call entry, in worker processes, each with its own seed. Prints the inputs per target, the rate
and every escape (written to --out as a replayable file).

Run: .venv/bin/python bench/fuzz.py --inputs 10000000 [--workers 2] [--seed 1] [--out /tmp/fuzz-escapes]
Nice it (``nice -n 19``) to leave a shared machine its CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "robustness"))

from targets import Tally, run

CHUNK = 100_000
"""Inputs per task: each task starts from its own seed (seed + task number)."""


def _chunk(seed: int, inputs: int) -> tuple[dict[str, int], list[tuple[str, bytes, str]]]:
    tally = run(seed, inputs)
    return tally.inputs, [(e.target, e.data, e.detail) for e in tally.escapes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fuzz-escapes"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    total = Tally()
    start = time.monotonic()
    chunks = [(args.seed + n, min(CHUNK, args.inputs - n * CHUNK)) for n in range(-(-args.inputs // CHUNK))]
    with ProcessPoolExecutor(args.workers) as pool:
        for done, (inputs, escapes) in enumerate(pool.map(_chunk, *zip(*chunks, strict=True)), 1):
            for target, count in inputs.items():
                total.inputs[target] += count
            for target, data, detail in escapes:
                path = args.out / f"escape-{target.replace(' ', '-')}-{len(list(args.out.iterdir()))}.txt"
                path.write_text(f"target: {target}\ninput: {data!r}\n\n{detail}\n")
                print(f"ESCAPE ({target}), written to {path}:\n{detail}", flush=True)
            escaped = len(list(args.out.glob("escape-*")))
            rate = total.total() / (time.monotonic() - start)
            print(f"{done}/{len(chunks)} chunks: {total.total()} inputs {total.inputs}, {escaped} escapes, "
                  f"{rate:.0f} inputs/s", flush=True)  # fmt: skip
    print(f"done: {total.total()} inputs in {time.monotonic() - start:.0f} s, per target {total.inputs}")


if __name__ == "__main__":
    main()
