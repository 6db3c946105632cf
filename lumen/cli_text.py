"""Text commands: embed, analyze, chat, tokens, words."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from google.rpc import code_pb2

from lumen.cli_output import emit, progress
from lumen.client import Client, vectors_of
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2
from lumen.nlp.v1 import nlp_pb2


def _embed_file(client: Client, args: argparse.Namespace) -> None:
    """Every line of a file through one EmbedStream, chunk by chunk, with a progress bar."""
    texts = [line for line in Path(args.file).read_text().splitlines() if line.strip()]
    if not texts:
        raise ValueError(f"{args.file} has no lines to embed")
    chunks = [texts[i : i + args.chunk_size] for i in range(0, len(texts), args.chunk_size)]

    def requests() -> Iterator[embeddings_pb2.EmbedStreamRequest]:
        for i, chunk in enumerate(chunks):
            request = embeddings_pb2.EmbedStreamRequest(texts=chunk)
            if i == 0:  # options are read from the first message only
                request.model.name = args.model
                request.normalize = args.normalize
                request.encoding = common_pb2.VECTOR_ENCODING_F32_BYTES
            yield request

    responses = []
    with progress(len(texts), f"embedding {args.file}", args.json or args.quiet) as bar:
        for response in client.embeddings.EmbedStream(requests()):
            responses.append(response)
            bar.update(len(response.embeddings))
    responses.sort(key=lambda r: r.chunk_index)
    vectors = np.concatenate([vectors_of(r) for r in responses])  # type: ignore[arg-type]
    if args.out:
        np.save(args.out, vectors)

    def human() -> None:
        tokens = sum(r.usage.input_tokens for r in responses)
        print(f"embedded {vectors.shape[0]} texts ({vectors.shape[1]} dims) in {len(chunks)} chunks, {tokens} tokens")
        if args.out:
            print(f"wrote {args.out}")

    emit(args, responses, human)


def _embed(client: Client, args: argparse.Namespace) -> None:
    if args.file:
        _embed_file(client, args)
        return
    if not args.texts:
        raise ValueError("embed takes texts or --file")
    start = time.perf_counter()
    response = client.embed_raw(args.texts, args.model, args.normalize)
    elapsed_ms = (time.perf_counter() - start) * 1e3

    def human() -> None:
        vectors = vectors_of(response)
        print(f"model {response.model.name} v{response.model.version} on {response.model.device}")
        for text, vector in zip(args.texts, vectors, strict=True):
            head = ", ".join(f"{x:+.4f}" for x in vector[:5])
            print(f"  {text[:40]!r}: {vector.shape[0]} dims [{head}, ...] norm {np.linalg.norm(vector):.4f}")
        print(f"{response.usage.input_tokens} tokens in {elapsed_ms:.1f} ms")

    emit(args, response, human)


def _analyze(client: Client, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    response = client.analyze_text(args.text, args.features.split(","))
    elapsed_ms = (time.perf_counter() - start) * 1e3

    def human() -> None:
        for name in ("language", "sentiment", "classification", "entities", "embedding"):
            if not response.HasField(name):
                continue
            part = getattr(response, name)
            if part.status.code:
                print(f"{name:<15} {code_pb2.Code.Name(part.status.code)}: {part.status.message}")
            elif name == "language":
                print(f"{name:<15} " + ", ".join(f"{la.language_code} {la.confidence:.3f}" for la in part.languages))
            elif name == "sentiment":
                label = nlp_pb2.SentimentLabel.Name(part.label).removeprefix("SENTIMENT_LABEL_").lower()
                print(f"{name:<15} {label} (score {part.score:+.3f}, {part.model.name})")
            elif name == "classification":
                print(f"{name:<15} " + ", ".join(f"{label.label} {label.score:.3f}" for label in part.labels))
            elif name == "entities":
                print(f"{name:<15} " + ", ".join(f"{e.text} ({e.label})" for e in part.entities))
            else:
                print(f"{name:<15} {part.embedding.dimension} dims ({part.model.name})")
        print(f"{elapsed_ms:.1f} ms")

    emit(args, response, human)


def _chat(client: Client, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    first = None
    for text in client.chat_stream(args.message, args.max_new_tokens, args.seed):
        first = first or time.perf_counter()
        print(text, end="", flush=True)
    end = time.perf_counter()
    print(f"\n[first token {((first or end) - start) * 1e3:.0f} ms, total {(end - start) * 1e3:.0f} ms]")


def _tokens(client: Client, args: argparse.Namespace) -> None:
    request = nlp_pb2.TokenizeRequest(model=common_pb2.ModelRef(name=args.model), texts=args.texts)
    response = client.call(client.tokenizer.Tokenize, request)

    def human() -> None:
        print(f"model {response.model.name}")
        for text, result in zip(args.texts, response.results, strict=True):
            if result.status.code:
                print(f"  {text[:40]!r}: {code_pb2.Code.Name(result.status.code)}: {result.status.message}")
                continue
            print(f"  {text[:40]!r}: {len(result.tokens)} tokens")
            print("    " + " ".join(f"{t.piece}({t.id})" for t in result.tokens))

    emit(args, response, human)


def _words(client: Client, args: argparse.Namespace) -> None:
    model = common_pb2.ModelRef(name=args.model)
    if args.action == "similarity":
        if len(args.words) != 2:
            raise ValueError("words similarity takes exactly two words")
        request = embeddings_pb2.WordSimilarityRequest(model=model, word_a=args.words[0], word_b=args.words[1])
        response = client.call(client.words.WordSimilarity, request)
        emit(args, response, lambda: print(f"{args.words[0]} ~ {args.words[1]}: {response.score:.4f}"))
        return
    if args.action == "analogy":
        # a : b :: c : ?  ->  positive b, c; negative a (king - man + woman).
        if len(args.words) != 3:
            raise ValueError("words analogy takes three words: A B C, for A is to B as C is to ?")
        a, b, c = args.words
        request = embeddings_pb2.MostSimilarWordsRequest(model=model, positive=[b, c], negative=[a], top_k=args.top_k)
    else:
        request = embeddings_pb2.MostSimilarWordsRequest(model=model, positive=args.words, top_k=args.top_k)
    response = client.call(client.words.MostSimilarWords, request)
    emit(args, response, lambda: [print(f"{w.word:<20} {w.score:.4f}") for w in response.words])


def register(commands: argparse._SubParsersAction) -> None:
    embed = commands.add_parser("embed", help="sentence embeddings")
    embed.add_argument("texts", nargs="*")
    embed.add_argument("--file", default=None, help="one text per line, streamed through EmbedStream")
    embed.add_argument("--chunk-size", type=int, default=64, help="texts per stream message (with --file)")
    embed.add_argument("--out", default=None, metavar="VECTORS.npy", help="save the --file vectors (float32)")
    embed.add_argument("--quiet", action="store_true", help="no progress bar")
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
    tokens = commands.add_parser("tokens", help="tokenize text (TokenizerService.Tokenize)")
    tokens.add_argument("texts", nargs="+")
    tokens.add_argument("--model", default="")
    tokens.set_defaults(run=_tokens)
    words = commands.add_parser("words", help="word vectors: similar WORD..., analogy A B C, similarity A B")
    words.add_argument("action", choices=["similar", "analogy", "similarity"])
    words.add_argument("words", nargs="+")
    words.add_argument("--model", default="")
    words.add_argument("--top-k", type=int, default=10)
    words.set_defaults(run=_words)
