"""Service commands: models, health, usage."""

from __future__ import annotations

import argparse
import sys

from lumen.cli_output import emit
from lumen.client import Client
from lumen.common.v1 import common_pb2
from lumen.gateway.v1 import gateway_pb2


def _models(client: Client, args: argparse.Namespace) -> None:
    response = client.list_models(args.service)

    def human() -> None:
        for model in response.models:
            state = common_pb2.ModelState.Name(model.state).removeprefix("MODEL_STATE_")
            print(f"{model.service:<11} {model.name:<24} v{model.version:<6} {model.task:<25} {model.device:<7}", state)
        for backend in response.backends:
            if backend.status.code:
                print(f"{backend.service:<11} unavailable: {backend.status.message}", file=sys.stderr)

    emit(args, response, human)


def _health(client: Client, args: argparse.Namespace) -> None:
    status = client.health(args.service)
    print(f'{{"status": "{status}"}}' if args.json else status)


def _usage(client: Client, args: argparse.Namespace) -> None:
    response = client.call(client.gateway.GetUsage, gateway_pb2.GetUsageRequest(key_id=args.key_id))

    def human() -> None:
        u = response.usage
        since = response.period_start.ToJsonString()
        print(f"key {response.key_id or '(anonymous)'}: {response.calls} calls since {since}")
        print(f"  tokens in {u.input_tokens}, out {u.output_tokens}, images {u.images}")
        print(f"  training {u.training_seconds:.0f} s")
        for m in response.methods:
            print(f"  {m.method:<50} {m.calls:>6} calls {m.errors:>4} errors {m.usage.input_tokens:>8} tokens")
        q = response.quota
        if q.calls_limit or q.tokens_limit:
            calls, tokens = f"{q.calls_remaining}/{q.calls_limit}", f"{q.tokens_remaining}/{q.tokens_limit}"
            print(f"  quota: {calls} calls, {tokens} tokens left")

    emit(args, response, human)


def register(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="models of every service")
    models.add_argument("--service", default="")
    models.set_defaults(run=_models)
    health = commands.add_parser("health", help="health of the gateway or of one service behind it")
    health.add_argument("service", nargs="?", default="")
    health.set_defaults(run=_health)
    usage = commands.add_parser("usage", help="calls and tokens metered for your key (GatewayService.GetUsage)")
    usage.add_argument("--key-id", default="", help="another key's usage (admin keys only)")
    usage.set_defaults(run=_usage)
