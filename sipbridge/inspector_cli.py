"""``sipbridge inspector token``: a token that opens the call inspector, signed with the configured API key.

The inspector (docs/inspector.md) takes any LiveKit token with the SIP ``admin`` grant; ``lk token create`` has no
flag for that grant, so this prints one, with the inspector's address to paste it into.
"""

from __future__ import annotations

import argparse
import datetime
import sys

from livekit import api

from sipbridge.config import ConfigError, load_config

USAGE_ERROR = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inspector = subparsers.add_parser("inspector", help="the call inspector's web page (inspector_port)")
    commands = inspector.add_subparsers(dest="inspector_command", metavar="COMMAND", required=True)
    token = commands.add_parser(
        "token",
        help="print a token with the SIP admin grant for the inspector",
        description="Print a LiveKit token with the SIP admin grant, signed with the configured API key and secret.",
    )
    token.add_argument("--ttl", type=float, default=8.0, metavar="HOURS", help="how long it is good for (8 h)")
    token.add_argument("--identity", default="inspector", help="who the token says it is")
    token.set_defaults(func=print_token)


def print_token(args: argparse.Namespace) -> int:
    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as e:
        print(f"sipbridge inspector token: {e}", file=sys.stderr)
        return USAGE_ERROR
    grant = api.SIPGrants(admin=True)
    token = api.AccessToken(config.api_key, config.api_secret).with_identity(args.identity).with_sip_grants(grant)
    print(token.with_ttl(datetime.timedelta(hours=args.ttl)).to_jwt())
    port = config.inspector.port
    where = f"http://{config.inspector.listen_ip}:{port}/login" if port else "inspector_port is not set (off)"
    print(f"sign in at {where}, or send it as 'Authorization: Bearer <token>'", file=sys.stderr)
    return 0
