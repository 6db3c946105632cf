"""Collection commands: index, search, collections list|get|delete."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import struct_pb2
from google.rpc import code_pb2

from lumen.cli_output import emit, progress
from lumen.client import Client
from lumen.client_pages import every_page
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2
from lumen.gateway.v1 import gateway_pb2

# Text files a folder index reads; the id is the path relative to the folder.
TEXT_SUFFIXES = {".txt", ".md", ".rst"}


def _documents(source: Path) -> list[embeddings_pb2.Document]:
    """Documents of a JSONL file ({"id", "text", "metadata"?} per line) or of a folder's text files."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        return [embeddings_pb2.Document(id=str(p.relative_to(source)), text=p.read_text()) for p in files]
    documents = []
    for number, line in enumerate(source.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            document = embeddings_pb2.Document(id=str(row["id"]), text=row["text"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{source}:{number}: expected a JSON object with id and text ({exc})") from exc
        if row.get("metadata"):
            metadata = struct_pb2.Struct()
            metadata.update(row["metadata"])
            document.metadata.CopyFrom(metadata)
        documents.append(document)
    return documents


def _batches(documents: list[embeddings_pb2.Document], size: int) -> Iterator[list[embeddings_pb2.Document]]:
    for start in range(0, len(documents), size):
        yield documents[start : start + size]


def _index(client: Client, args: argparse.Namespace) -> None:
    documents = _documents(Path(args.source))
    responses = []
    with progress(len(documents), f"indexing {args.collection}", args.json or args.quiet) as bar:
        for batch in _batches(documents, args.batch_size):
            request = gateway_pb2.IndexDocumentsRequest(
                collection=args.collection,
                documents=batch,
                create_if_missing=True,
                model=common_pb2.ModelRef(name=args.model),
            )
            responses.append(client.call(client.gateway.IndexDocuments, request))
            bar.update(len(batch))
    failed = [
        (doc.id, status)
        for batch, response in zip(_batches(documents, args.batch_size), responses, strict=True)
        for doc, status in zip(batch, response.statuses, strict=False)
        if status.code
    ]

    def human() -> None:
        indexed = sum(r.indexed for r in responses)
        print(f"indexed {indexed} of {len(documents)} documents into {args.collection}")
        for doc_id, status in failed:
            print(f"  {doc_id}: {code_pb2.Code.Name(status.code)}: {status.message}", file=sys.stderr)

    emit(args, responses, human)


def _search(client: Client, args: argparse.Namespace) -> None:
    request = gateway_pb2.SemanticSearchRequest(
        collections=args.collection, query=args.query, top_k=args.top_k, include_documents=True
    )
    if args.where:
        # key=value pairs; values stay strings (the filter compares kinds: "1" is not 1).
        request.filter.update(dict(pair.split("=", 1) for pair in args.where))
    response = client.call(client.gateway.SemanticSearch, request)

    def human() -> None:
        for status in response.collection_statuses:
            if status.status.code:
                print(f"{status.collection}: {code_pb2.Code.Name(status.status.code)}: {status.status.message}")
        for found in response.hits:
            text = found.hit.document.text.replace("\n", " ")
            print(f"{found.hit.score:.4f}  {found.collection}/{found.hit.id}  {text[:70]}")

    emit(args, response, human)


def _collections(client: Client, args: argparse.Namespace) -> None:
    if args.action == "list":
        request = embeddings_pb2.ListCollectionsRequest()
        rows = every_page(client.call, client.collections.ListCollections, request, "collections")
        response = embeddings_pb2.ListCollectionsResponse(collections=rows)
    elif args.action == "get":
        response = client.call(client.collections.GetCollection, embeddings_pb2.GetCollectionRequest(name=args.name))
        rows = [response.collection]
    else:
        response = client.call(
            client.collections.DeleteCollection, embeddings_pb2.DeleteCollectionRequest(name=args.name)
        )
        emit(args, response, lambda: print(f"deleted {args.name}"))
        return

    def human() -> None:
        for c in rows:
            print(f"{c.name:<24} {c.model:<28} {c.dimension:>5} dims {c.document_count:>8} documents")

    emit(args, response, human)


def register(commands: argparse._SubParsersAction) -> None:
    index = commands.add_parser("index", help="index a JSONL file or a folder of text files into a collection")
    index.add_argument("source", help='JSONL ({"id": ..., "text": ..., "metadata": {...}} per line) or a folder')
    index.add_argument("--collection", required=True)
    index.add_argument("--model", default="", help="embedding model when the collection is created")
    index.add_argument("--batch-size", type=int, default=64)
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.set_defaults(run=_index)
    search = commands.add_parser("search", help="semantic search (GatewayService.SemanticSearch)")
    search.add_argument("query")
    search.add_argument("--collection", action="append", required=True, help="repeat to search several")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--where", action="append", default=[], metavar="KEY=VALUE", help="metadata filter")
    search.set_defaults(run=_search)
    collections = commands.add_parser("collections", help="collections: list, get NAME, delete NAME")
    collections.add_argument("action", choices=["list", "get", "delete"])
    collections.add_argument("name", nargs="?", default="")
    collections.set_defaults(run=_collections)
