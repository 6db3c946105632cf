"""`lumen keys create|list|revoke`: the gateway's keys file, through gateway.keys itself (one code path)."""

from __future__ import annotations

import argparse

from lumen.client import Client


def _keys(client: Client, args: argparse.Namespace) -> None:
    from gateway import keys  # the gateway package: only this command needs it installed

    keys.main(args.rest)


def register(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser(
        "keys",
        help="API keys file: [--file F] create --id ID --services all|... | list | revoke --id ID",
        add_help=False,  # --help goes on to gateway.keys
    )
    keys.add_argument("rest", nargs=argparse.REMAINDER)
    keys.set_defaults(run=_keys)
