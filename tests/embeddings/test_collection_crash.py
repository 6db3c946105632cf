"""kill -9 in the middle of upserts loses no acknowledged write (a real service process)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.protobuf import struct_pb2
from google.rpc import code_pb2

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from tools.suite import Component, Suite, free_port

pytestmark = pytest.mark.slow

SENDERS = 4
BATCH = 8
ACKED_BEFORE_KILL = 160  # documents


async def start(suite: Suite, env: dict[str, str], log_dir: Path) -> Component:
    component = suite.start_component("embeddings", free_port(), env, log_dir)
    try:
        await asyncio.to_thread(suite.wait_serving, ["embeddings"], 180.0)
    except Exception:
        print((log_dir / "embeddings.log").read_text()[-4000:])
        raise
    return component


def tag(doc_id: str) -> struct_pb2.Struct:
    metadata = struct_pb2.Struct()
    metadata.update({"tag": doc_id})
    return metadata


async def sender(
    stub: pb_grpc.CollectionServiceStub, number: int, acked: dict[str, str], lost: list[list[str]], stop: asyncio.Event
) -> None:
    """Upsert batches back to back; a batch counts as acknowledged only when its response arrived."""
    call = 0
    while not stop.is_set():
        docs = [
            pb.Document(
                id=f"s{number}-{call}-{j}", text=f"sender {number} call {call} document {j} about topic {j % 5}"
            )
            for j in range(BATCH)
        ]
        for doc in docs:
            doc.metadata.CopyFrom(tag(doc.id))
        try:
            response = await stub.UpsertDocuments(pb.UpsertDocumentsRequest(collection="crash", documents=docs))
        except grpc.aio.AioRpcError:
            lost.append([d.id for d in docs])  # in flight when the process died: not acknowledged
            return
        assert all(s.code == code_pb2.OK for s in response.statuses)
        acked.update({d.id: d.text for d in docs})
        call += 1


# The server sheds past its concurrent-call cap (RESOURCE_EXHAUSTED): the checks read a bounded number at a time.
READS = asyncio.Semaphore(16)


async def present(stub: pb_grpc.CollectionServiceStub, doc_id: str) -> str | None:
    """Text of the stored document ``doc_id``, found through an equality filter on its tag."""
    async with READS:
        response = await stub.Search(
            pb.SearchRequest(
                collection="crash",
                vector=common_pb2.Vector(values=[1.0] * 384),
                top_k=1,
                filter=tag(doc_id),
                include_documents=True,
            )
        )
    return response.hits[0].document.text if response.hits else None


async def test_acknowledged_upserts_survive_kill_9_and_restart(embeddings_repository: Path, tmp_path: Path) -> None:
    env = {
        "LUMEN_EMBEDDINGS_HOST": "127.0.0.1",
        "LUMEN_EMBEDDINGS_MODEL_REPOSITORY": str(embeddings_repository),
        "LUMEN_EMBEDDINGS_MODELS": "all-minilm-l6-v2",
        "LUMEN_EMBEDDINGS_COLLECTIONS_DIR": str(tmp_path / "collections"),
    }
    suite = Suite()
    acked: dict[str, str] = {}
    lost: list[list[str]] = []
    try:
        first = await start(suite, env, tmp_path)
        async with grpc.aio.insecure_channel(first.address) as channel:
            stub = pb_grpc.CollectionServiceStub(channel)
            await stub.CreateCollection(pb.CreateCollectionRequest(name="crash"))
            stop = asyncio.Event()
            senders = [asyncio.create_task(sender(stub, n, acked, lost, stop)) for n in range(SENDERS)]
            for _ in range(600):  # at most 60 s
                if len(acked) >= ACKED_BEFORE_KILL:
                    break
                await asyncio.sleep(0.1)
            os.kill(first.process.pid, signal.SIGKILL)  # senders are mid-call: they send back to back
            await asyncio.to_thread(first.process.wait)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*senders), 30)
        assert first.process.returncode == -signal.SIGKILL
        assert len(acked) >= ACKED_BEFORE_KILL
        assert lost, "no upsert was in flight at the kill"
        suite.stop_component("embeddings")

        second = await start(suite, env, tmp_path)
        async with grpc.aio.insecure_channel(second.address) as channel:
            stub = pb_grpc.CollectionServiceStub(channel)
            info = await stub.GetCollection(pb.GetCollectionRequest(name="crash"))
            assert info.collection.document_count >= len(acked)
            ids = list(acked)
            texts = await asyncio.gather(*(present(stub, i) for i in ids))
            missing = [i for i, text in zip(ids, texts, strict=True) if text != acked[i]]
            assert not missing, f"{len(missing)} acknowledged documents lost: {missing[:5]}"
            # A batch in flight at the kill is all there or not there at all: never half a write.
            landed = 0
            for batch in lost:
                found = sum(text is not None for text in await asyncio.gather(*(present(stub, i) for i in batch)))
                assert found in (0, len(batch))
                landed += found
            assert info.collection.document_count == len(acked) + landed
    finally:
        suite.stop()
