"""``sipbridge inspector token`` prints a token the inspector lets in (``lk`` cannot make one with the SIP grant)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipbridge.cli import main
from sipbridge.inspector.access import AccessCheck

KEY, SECRET = "APIcli", "a-secret-of-at-least-thirty-two-bytes!!"


def test_the_printed_token_opens_the_inspector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"api_key: {KEY}\napi_secret: {SECRET}\nws_url: ws://127.0.0.1:7880\ninspector_port: 8093\n")
    assert main(["--config", str(config), "inspector", "token", "--ttl", "1"]) == 0
    out = capsys.readouterr()
    verdict = AccessCheck(KEY, SECRET).verdict(out.out.strip())
    assert verdict.status == 200 and verdict.expires is not None
    assert "http://127.0.0.1:8093/login" in out.err
    assert AccessCheck(KEY, "another-secret-of-thirty-two-bytes!!").verdict(out.out.strip()).status == 401
