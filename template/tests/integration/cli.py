"""The command line: `python -m tests.integration COMMAND --app-url URL`, from the project root.

Exit status: 0 when every check passed, 1 when one failed, 2 when the command could not run
(a wrong option, an app that cannot be reached, credentials it refused), with one line that
says why.
"""

import argparse
import asyncio
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
from rich.console import Console

from . import auth, load, sample_data, smoke
from .api import Fatal, check_reachable, unreachable

PROG = "python -m tests.integration"
COMMANDS = {
    "sample-data": "fill the app with realistic items",
    "smoke": "check every endpoint's main success and failure path, one line per check",
    "concurrency": "run many concurrent clients that write and read, then check every item",
}


def app_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        msg = f"{value!r} is not an http:// or https:// URL"
        raise argparse.ArgumentTypeError(msg)
    return value.rstrip("/")


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        msg = f"{value!r} is not a whole number of at least 1"
        raise argparse.ArgumentTypeError(msg)
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check a running instance of the service over HTTP.",
        epilog="Exit status: 0 all checks passed, 1 a check failed, 2 the command could not run.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in COMMANDS.items():
        command = commands.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        command.add_argument(
            "--app-url",
            type=app_url,
            required=True,
            metavar="URL",
            help="the service's root URL, e.g. http://127.0.0.1:8000",
        )
        command.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="give up on an answer after this long (default: 30)",
        )
        if name == "sample-data":
            command.add_argument(
                "--count",
                type=positive,
                default=50,
                metavar="N",
                help="items to create (default: 50)",
            )
            command.add_argument(
                "--seed", type=int, help="make the same items as another run with this seed"
            )
        elif name == "concurrency":
            command.add_argument(
                "--clients",
                type=positive,
                default=50,
                metavar="N",
                help="concurrent clients (default: 50)",
            )
            command.add_argument(
                "--requests",
                type=positive,
                default=20,
                metavar="N",
                help="requests each client sends, one after the other (default: 20)",
            )
            command.add_argument(
                "--keep",
                action="store_true",
                help="keep the items made instead of deleting them at the end",
            )
            command.add_argument(
                "--json",
                type=Path,
                metavar="FILE",
                dest="json_report",
                help="also write the figures to FILE",
            )
        auth.add_arguments(command, name)
    return parser


# The server closes a keep-alive connection idle for 5 s (Uvicorn's default): a client that
# reuses one at that moment gets "Server disconnected". Dropping them sooner avoids the race.
KEEPALIVE_SECONDS = 2.0
# Connections of the client that the commands share (concurrency's clients have their own).
SHARED_CONNECTIONS = 32


async def run(
    argv: Sequence[str] | None = None, *, transport: httpx.AsyncBaseTransport | None = None
) -> int:
    """Parse the arguments and run the command; `transport` is for tests, which pass the
    app's ASGI transport instead of a network."""
    args = build_parser().parse_args(argv)
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    # One TLS context for every client: making one costs tens of milliseconds. Clients given
    # a transport (the tests') make no connection of their own, and need none.
    tls: ssl.SSLContext | bool = httpx.create_ssl_context() if transport is None else True

    def new_client(connections: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=args.app_url,
            timeout=args.timeout,
            limits=httpx.Limits(
                max_connections=connections,
                max_keepalive_connections=connections,
                keepalive_expiry=KEEPALIVE_SECONDS,
            ),
            verify=tls,
            transport=transport,
        )

    try:
        credentials = auth.credentials(args)
        async with new_client(SHARED_CONNECTIONS) as http:
            await check_reachable(http, args.app_url)
            if args.command == "sample-data":
                owner = await auth.sample_data_owner(http, credentials)
                return await sample_data.run(http, owner, args.count, args.seed, out)
            if args.command == "smoke":
                return await smoke.run(http, credentials, out)
            owners = await auth.owners(http, credentials)
            options = load.Options(args.clients, args.requests, args.keep, args.json_report)
            described = auth.describe_owners(owners)
            return await load.run(http, lambda: new_client(1), owners, described, options, out)
    except Fatal as exc:
        err.print(f"error: {exc}", markup=False)
    except httpx.TransportError as exc:
        err.print(f"error: {unreachable(args.app_url, exc)}", markup=False)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(run(argv))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
