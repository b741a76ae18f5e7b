"""``sipbridge dispatch test``: ask the configured store what the bridge would do with a call.

Only the I/O lives here (arguments, reading the store, printing); the decision and its rendering are
``dispatch.simulate``. Exit status: 0 when the call would be accepted (or asked for a PIN), 1 when it
would be refused, 2 when the configuration or store cannot be read or an argument is malformed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from livekit.protocol.sip import SIPDispatchRuleInfo, SIPInboundTrunkInfo

from dispatch.simulate import simulate
from sipbridge.config import ConfigError, load_config
from sipbridge.store import StoreError, open_store

USAGE_ERROR = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dispatch test`` to the top-level ``sipbridge`` command."""
    dispatch = subparsers.add_parser("dispatch", help="inspect inbound dispatch (trunks and dispatch rules)")
    commands = dispatch.add_subparsers(dest="dispatch_command", metavar="COMMAND", required=True)
    test = commands.add_parser(
        "test",
        help="show the trunk, rule, room and participant an inbound call would get",
        description="Simulate an inbound call against the configured trunks and dispatch rules.",
    )
    test.add_argument("--to", required=True, metavar="NUMBER", help="called number (the To user), e.g. +15105550100")
    test.add_argument(
        "--from", dest="from_number", required=True, metavar="NUMBER", help="calling number (the From user)"
    )
    test.add_argument("--source", required=True, metavar="IP", help="source IP address of the INVITE")
    test.add_argument(
        "--from-host", default="", metavar="HOST", help="host of the From URI (default: the --source address)"
    )
    test.add_argument("--pin", default="", help="PIN the caller enters if one is asked for")
    test.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an INVITE header (repeatable), e.g. X-Twilio-CallSid=CA123",
    )
    test.add_argument("--auth", metavar="USER", help="the INVITE carries valid digest credentials for USER")
    test.add_argument("--json", action="store_true", help="print the report as JSON")
    test.set_defaults(func=run_test)


def _parse_headers(values: list[str]) -> list[tuple[str, str]]:
    headers = []
    for value in values:
        name, sep, content = value.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--header {value!r}: expected NAME=VALUE")
        headers.append((name.strip(), content))
    return headers


async def _load(config_path: str | None) -> tuple[list[SIPInboundTrunkInfo], list[SIPDispatchRuleInfo]]:
    store = await open_store(load_config(config_path), read_only=True)
    try:
        return list(store.inbound_trunks()), list(store.dispatch_rules())
    finally:
        await store.close()


def run_test(args: argparse.Namespace) -> int:
    """Print what the bridge would do with the described call; see the module docstring for exit codes."""
    try:
        headers = _parse_headers(args.header)
        trunks, rules = asyncio.run(_load(getattr(args, "config", None)))
    except (ValueError, ConfigError, StoreError) as e:
        print(f"sipbridge dispatch test: {e}", file=sys.stderr)
        return USAGE_ERROR
    report = simulate(
        trunks,
        rules,
        called_number=args.to,
        calling_number=args.from_number,
        source_ip=args.source,
        pin=args.pin,
        headers=headers,
        auth_username=args.auth,
        from_host=args.from_host or args.source,
    )
    print(report.to_json() if args.json else report.to_text())
    return 0 if report.accepted else 1
