"""A full disk under the collections: RESOURCE_EXHAUSTED, nothing of the failed write kept, and
the service keeps serving (reads at once, writes once space is freed). A real server on port 0
whose collections live on a 3 MB tmpfs."""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.protobuf import struct_pb2

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from services.embeddings import app
from services.embeddings.settings import EmbeddingsSettings
from shared.model_service import start
from tests.shared.tmpfs import fill, small_tmpfs

pytestmark = pytest.mark.slow


def documents(prefix: str, n: int) -> list[pb.Document]:
    """Documents with their own vectors (nothing to embed) and ~14 KB of metadata each (the limit is 16 KB)."""
    out = []
    for i in range(n):
        metadata = struct_pb2.Struct()
        metadata.update({f"k{j}": (f"{prefix}{i}{j}" * 3500)[:7000] for j in range(2)})
        vector = common_pb2.Vector(values=[float(i + 1)] + [0.5] * 383)
        out.append(pb.Document(id=f"{prefix}-{i}", metadata=metadata, vector=vector))
    return out


async def test_disk_full_answers_resource_exhausted_and_the_store_keeps_working(
    embeddings_repository: Path, tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "disk", "3m") as disk:
        settings = EmbeddingsSettings(
            host="127.0.0.1",
            port=0,
            model_repository=str(embeddings_repository),
            models=["all-minilm-l6-v2"],
            collections_dir=str(disk),
        )
        service = await start("embeddings", settings, app.FACTORIES, app.registrations)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
                stub = pb_grpc.CollectionServiceStub(channel)
                await stub.CreateCollection(pb.CreateCollectionRequest(name="full"), timeout=60)
                first = await stub.UpsertDocuments(
                    pb.UpsertDocumentsRequest(collection="full", documents=documents("a", 1)), timeout=60
                )
                assert first.upserted == 1
                filler = fill(disk, leave_bytes=64 * 1024)
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.UpsertDocuments(
                        pb.UpsertDocumentsRequest(collection="full", documents=documents("b", 16)), timeout=60
                    )
                assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value.details()
                assert "full" in refused.value.details()
                info = await stub.GetCollection(pb.GetCollectionRequest(name="full"), timeout=30)
                assert info.collection.document_count == 1  # none of the 16
                hits = await stub.Search(
                    pb.SearchRequest(collection="full", vector=common_pb2.Vector(values=[1.0] * 384), top_k=10),
                    timeout=30,
                )
                assert [h.id for h in hits.hits] == ["a-0"]
                filler.unlink()
                again = await stub.UpsertDocuments(
                    pb.UpsertDocumentsRequest(collection="full", documents=documents("b", 16)), timeout=60
                )
                assert again.upserted == 16
                info = await stub.GetCollection(pb.GetCollectionRequest(name="full"), timeout=30)
                assert info.collection.document_count == 17
        finally:
            await service.stop(0)
