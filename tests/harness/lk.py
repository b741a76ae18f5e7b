"""Running the real ``lk`` CLI against a server under test, the way an operator would.

Credentials travel in LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET (lk reads them for its global
flags, which must otherwise precede the subcommand), and HOME points at a scratch directory so a developer's
own ``lk`` project configuration never leaks into a test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol


class LiveKitEndpoint(Protocol):
    """Anything lk can talk to: a livekit-server, or a bridge serving the SIP API itself."""

    @property
    def http_url(self) -> str: ...

    @property
    def api_key(self) -> str: ...

    @property
    def api_secret(self) -> str: ...


class LkFailed(RuntimeError):
    """lk exited non-zero; the message carries its command line, stdout and stderr."""


class LkRunner:
    """``lk(*args, url=..., api_key=..., api_secret=..., input_files=...)`` runs one lk command.

    Without an explicit url/key/secret the command targets `default_target()` (in tests, the shared
    livekit_server, started only when a command needs it). `input_files` maps file names to contents;
    they are written to the command's working directory, so arguments may name them bare.
    """

    def __init__(self, binary: Path, workdir: Path, default_target: Callable[[], LiveKitEndpoint]) -> None:
        self.binary = binary
        self.workdir = workdir
        self._default_target = default_target
        self._runs = 0

    def __call__(
        self,
        *args: str,
        url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        target: LiveKitEndpoint | None = None,
        input_files: Mapping[str, str | bytes] | None = None,
        check: bool = True,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[str]:
        if url is None or api_key is None or api_secret is None:
            endpoint = target or self._default_target()
            url = url or endpoint.http_url
            api_key = api_key or endpoint.api_key
            api_secret = api_secret or endpoint.api_secret
        cwd = self._fresh_dir(input_files or {})
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(cwd),
            "LIVEKIT_URL": url,
            "LIVEKIT_API_KEY": api_key,
            "LIVEKIT_API_SECRET": api_secret,
        }
        argv = [str(self.binary), *args]
        result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise LkFailed(
                f"`lk {' '.join(args)}` against {url} exited {result.returncode}\n"
                f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
            )
        return result

    def _fresh_dir(self, input_files: Mapping[str, str | bytes]) -> Path:
        self._runs += 1
        cwd = self.workdir / f"run{self._runs}"
        cwd.mkdir(parents=True)
        for name, content in input_files.items():
            path = cwd / name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        return cwd
