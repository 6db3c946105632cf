"""The `lumen` command: talk to the gateway from a shell.

Each command family lives in its own module with a ``register(commands)``
function; FAMILIES lists them, so adding a family is one line.
``lumen --json ...`` prints the responses as proto3 JSON for scripts; errors
are one line ``ERROR <STATUS>: <message> (field: x)`` and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import grpc

from lumen import cli_collections, cli_faces, cli_keys, cli_service, cli_text, cli_training, cli_vision
from lumen.cli_output import error_line
from lumen.client import DEFAULT_ADDRESS, Client, Tls

FAMILIES: list[Callable[[argparse._SubParsersAction], None]] = [
    cli_text.register,
    cli_vision.register,
    cli_faces.register,
    cli_collections.register,
    cli_training.register,
    cli_service.register,
    cli_keys.register,
]


def parser() -> argparse.ArgumentParser:
    parsed = argparse.ArgumentParser(prog="lumen", description="Call the lumen gateway.")
    parsed.add_argument(
        "--address", default=None, help=f"gateway address (default $LUMEN_ADDRESS or {DEFAULT_ADDRESS})"
    )
    parsed.add_argument("--api-key", default=None, help="API key, sent as x-api-key (default $LUMEN_API_KEY)")
    parsed.add_argument("--tls", action="store_true", help="TLS to the gateway (system roots unless --ca-cert)")
    parsed.add_argument("--ca-cert", default=None, help="PEM CA that signed the gateway's certificate (implies --tls)")
    parsed.add_argument(
        "--client-cert", default=None, help="PEM certificate of this client, for mTLS (with --client-key)"
    )
    parsed.add_argument("--client-key", default=None, help="PEM private key of --client-cert")
    parsed.add_argument("--server-name", default="", help="name to verify in the gateway's certificate")
    parsed.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    parsed.add_argument("--json", action="store_true", help="print responses as proto3 JSON")
    commands = parsed.add_subparsers(dest="command", required=True)
    for register in FAMILIES:
        register(commands)
    return parsed


VALUED = ("--address", "--api-key", "--timeout", "--ca-cert", "--client-cert", "--client-key", "--server-name")


def _after_command(argv: list[str]) -> list[str]:
    """The arguments after the command name (global options come before it; VALUED take a value)."""
    skip = False
    for i, token in enumerate(argv):
        if skip or token.startswith("-"):
            skip = token in VALUED
            continue
        return argv[i + 1 :]
    return []


def tls_of(args: argparse.Namespace) -> Tls | None:
    """TLS settings from --tls, --ca-cert, --client-cert/--client-key and --server-name."""
    if not (args.tls or args.ca_cert or args.client_cert or args.client_key):
        return None
    return Tls(args.ca_cert, args.client_cert, args.client_key, args.server_name)


def main(argv: list[str] | None = None) -> int:
    parsed = parser()
    # `keys` hands every argument after it to gateway.keys, its own --help included.
    argv = sys.argv[1:] if argv is None else argv
    args, extra = parsed.parse_known_args(argv)
    if args.command == "keys":
        args.rest = _after_command(argv)
    elif extra:
        parsed.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        client = Client(args.address, args.api_key, args.timeout, tls_of(args))
    except (OSError, ValueError) as exc:  # unreadable or mismatched certificate files
        print(f"ERROR INVALID_ARGUMENT: {exc}", file=sys.stderr)
        return 1
    with client:
        try:
            code = args.run(client, args)  # None, or an exit code (a training job that failed)
        except grpc.RpcError as exc:
            print(error_line(exc), file=sys.stderr)
            return 1
        except (OSError, ValueError) as exc:  # unreadable input files, bad JSONL
            print(f"ERROR INVALID_ARGUMENT: {exc}", file=sys.stderr)
            return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
