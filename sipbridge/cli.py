"""The ``sipbridge`` command: run the bridge (the default), or operator tools such as ``dispatch test``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sipbridge import inspector_cli, logs, simulate_cli
from sipbridge.config import ConfigError, load_config
from sipbridge.service import run
from sipbridge.store import StoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sipbridge",
        description="SIP telephony bridge for LiveKit. With no configuration it runs on the embedded default.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config.yaml (else SIP_CONFIG_FILE, SIP_CONFIG_BODY, or the defaults)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser = commands.add_parser("run", help="run the bridge (the default command)")
    run_parser.set_defaults(func=_run)
    simulate_cli.register(commands)
    inspector_cli.register(commands)
    parser.set_defaults(func=_run)
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"sipbridge: invalid configuration: {e}", file=sys.stderr)
        return 2
    logs.configure(config.log_level, as_json=config.log_json, component_levels=config.log_component_levels)
    try:
        asyncio.run(run(config))
    except (ConfigError, StoreError) as e:
        print(f"sipbridge: cannot start: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"sipbridge: cannot start: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
