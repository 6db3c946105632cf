"""The `lumen` command: talk to the gateway from a shell.

lumen embed "some text" ["more text" ...] [--model NAME] [--normalize]
lumen models [--service embeddings]
lumen health [SERVICE]
"""

from __future__ import annotations

import argparse
import sys
import time

import grpc
import numpy as np
from google.rpc import code_pb2

from lumen.client import DEFAULT_ADDRESS, Client, vectors_of
from lumen.common.v1 import common_pb2
from lumen.nlp.v1 import nlp_pb2


def _embed(client: Client, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    response = client.embed_raw(args.texts, args.model, args.normalize)
    elapsed_ms = (time.perf_counter() - start) * 1e3
    vectors = vectors_of(response)
    print(f"model {response.model.name} v{response.model.version} on {response.model.device}")
    for text, vector in zip(args.texts, vectors, strict=True):
        head = ", ".join(f"{x:+.4f}" for x in vector[:5])
        print(f"  {text[:40]!r}: {vector.shape[0]} dims [{head}, ...] norm {np.linalg.norm(vector):.4f}")
    print(f"{response.usage.input_tokens} tokens in {elapsed_ms:.1f} ms")


def _analyze(client: Client, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    response = client.analyze_text(args.text, args.features.split(","))
    elapsed_ms = (time.perf_counter() - start) * 1e3
    for name in ("language", "sentiment", "classification", "entities", "embedding"):
        if not response.HasField(name):
            continue
        part = getattr(response, name)
        if part.status.code:
            print(f"{name:<15} {code_pb2.Code.Name(part.status.code)}: {part.status.message}")
        elif name == "language":
            print(f"{name:<15} " + ", ".join(f"{lang.language_code} {lang.confidence:.3f}" for lang in part.languages))
        elif name == "sentiment":
            print(
                f"{name:<15} {nlp_pb2.SentimentLabel.Name(part.label).removeprefix('SENTIMENT_LABEL_').lower()} "
                f"(score {part.score:+.3f}, {part.model.name})"
            )
        elif name == "classification":
            print(f"{name:<15} " + ", ".join(f"{label.label} {label.score:.3f}" for label in part.labels))
        elif name == "entities":
            print(f"{name:<15} " + ", ".join(f"{e.text} ({e.label})" for e in part.entities))
        else:
            print(f"{name:<15} {part.embedding.dimension} dims ({part.model.name})")
    print(f"{elapsed_ms:.1f} ms")


def _chat(client: Client, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    first = None
    for text in client.chat_stream(args.message, args.max_new_tokens, args.seed):
        first = first or time.perf_counter()
        print(text, end="", flush=True)
    end = time.perf_counter()
    print(f"\n[first token {((first or end) - start) * 1e3:.0f} ms, total {(end - start) * 1e3:.0f} ms]")


def _models(client: Client, args: argparse.Namespace) -> None:
    response = client.list_models(args.service)
    for model in response.models:
        state = common_pb2.ModelState.Name(model.state).removeprefix("MODEL_STATE_")
        print(f"{model.service:<11} {model.name:<24} v{model.version:<6} {model.task:<25} {model.device:<7} {state}")
    for backend in response.backends:
        if backend.status.code:
            print(f"{backend.service:<11} unavailable: {backend.status.message}", file=sys.stderr)


def _health(client: Client, args: argparse.Namespace) -> None:
    print(client.health(args.service))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lumen", description="Call the lumen gateway.")
    parser.add_argument(
        "--address", default=None, help=f"gateway address (default $LUMEN_ADDRESS or {DEFAULT_ADDRESS})"
    )
    parser.add_argument("--api-key", default=None, help="API key, sent as x-api-key")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed", help="sentence embeddings")
    embed.add_argument("texts", nargs="+")
    embed.add_argument("--model", default="")
    embed.add_argument("--normalize", action="store_true")
    embed.set_defaults(run=_embed)
    analyze = commands.add_parser("analyze", help="composite text analysis (GatewayService.AnalyzeText)")
    analyze.add_argument("text")
    analyze.add_argument("--features", default="language,sentiment,embedding")
    analyze.set_defaults(run=_analyze)
    chat = commands.add_parser("chat", help="ask the instruct model; tokens print as they stream")
    chat.add_argument("message")
    chat.add_argument("--max-new-tokens", type=int, default=128)
    chat.add_argument("--seed", type=int, default=None)
    chat.set_defaults(run=_chat)
    models = commands.add_parser("models", help="models of every service")
    models.add_argument("--service", default="")
    models.set_defaults(run=_models)
    health = commands.add_parser("health", help="health of the gateway or of one service behind it")
    health.add_argument("service", nargs="?", default="")
    health.set_defaults(run=_health)
    args = parser.parse_args(argv)
    with Client(args.address, args.api_key, args.timeout) as client:
        try:
            args.run(client, args)
        except grpc.RpcError as exc:
            print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
