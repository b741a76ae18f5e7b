"""Regenerates the prompt WAV files: ``python -m sipbridge.media.prompts.generate``.

espeak-ng speaks each text; sox makes it 16 kHz mono 16-bit, trims leading and trailing silence, normalises
to -3 dBFS and keeps 100 ms of silence at the end so the last word is not clipped by a codec's start-up.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from sipbridge.media.prompts import SAMPLE_RATE, TEXTS, prompt_path

VOICE = "en-us"
WORDS_PER_MINUTE = "150"


def generate(text: str, target: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        spoken = Path(scratch) / "spoken.wav"
        subprocess.run(["espeak-ng", "-v", VOICE, "-s", WORDS_PER_MINUTE, "-w", str(spoken), text], check=True)
        subprocess.run(
            [
                "sox",
                "--no-dither",
                str(spoken),
                "-r",
                str(SAMPLE_RATE),
                "-c",
                "1",
                "-b",
                "16",
                str(target),
                "silence",
                "1",
                "0.02",
                "0.5%",
                "reverse",
                "silence",
                "1",
                "0.02",
                "0.5%",
                "reverse",
                "norm",
                "-3",
                "pad",
                "0",
                "0.1",
            ],
            check=True,
        )


def main() -> None:
    for name, text in TEXTS.items():
        target = prompt_path(name)
        generate(text, target)
        print(f"{target.name}: {text!r} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
