"""How the CLI prints: human lines, or proto3 JSON with --json, and one line per error."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from lumen.errors import LumenError


def emit(args: argparse.Namespace, message: Message | list[Message], human: Callable[[], None]) -> None:
    """Proto3 JSON of the response(s) with --json, else the command's own human lines."""
    if args.json:
        if isinstance(message, list):
            print(json.dumps([json_format.MessageToDict(m) for m in message], indent=2))
        else:
            print(json_format.MessageToJson(message, indent=2))
    else:
        human()


def error_line(exc: grpc.RpcError) -> str:
    """``ERROR <STATUS>: <message> (field: x)``, the field taken from google.rpc.BadRequest when sent."""
    return f"ERROR {LumenError.of(exc)}"


def progress(total: int, label: str, quiet: bool) -> Any:
    """A tqdm bar on stderr (stdout stays machine-readable); ``bar.update(n)`` as work is done."""
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="doc", file=sys.stderr, disable=quiet)


def to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)
