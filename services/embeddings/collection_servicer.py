"""lumen.embeddings.v1.CollectionService: protos in, one await on Collections, protos out."""

from __future__ import annotations

import grpc

from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from services.embeddings.collection import Collection, Hit
from services.embeddings.collection_manager import Collections
from services.embeddings.collection_metadata import to_struct
from shared.pages import page
from shared.repository_servicer import model_info


def collection_proto(collection: Collection) -> pb.Collection:
    return pb.Collection(
        name=collection.name,
        model=collection.model,
        dimension=collection.dimension,
        document_count=len(collection),
        index=collection.index_kind,
    )


def hit_proto(hit: Hit, include_document: bool) -> pb.SearchHit:
    document = hit.document
    if not include_document:
        return pb.SearchHit(id=document.id, score=hit.score)
    return pb.SearchHit(
        id=document.id,
        score=hit.score,
        document=pb.Document(id=document.id, text=document.text, metadata=to_struct(document.metadata)),
    )


class CollectionServicer(pb_grpc.CollectionServiceServicer):
    def __init__(self, collections: Collections) -> None:
        self.collections = collections

    async def CreateCollection(
        self, request: pb.CreateCollectionRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateCollectionResponse:
        collection = await self.collections.create(request.name, request.model.name, request.model.version)
        return pb.CreateCollectionResponse(collection=collection_proto(collection))

    async def DeleteCollection(
        self, request: pb.DeleteCollectionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteCollectionResponse:
        await self.collections.delete(request.name)
        return pb.DeleteCollectionResponse()

    async def GetCollection(
        self, request: pb.GetCollectionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCollectionResponse:
        return pb.GetCollectionResponse(collection=collection_proto(await self.collections.get(request.name)))

    async def ListCollections(
        self, request: pb.ListCollectionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListCollectionsResponse:
        found, next_token = page(await self.collections.list(), lambda c: c.name, request.page_size, request.page_token)
        return pb.ListCollectionsResponse(collections=[collection_proto(c) for c in found], next_page_token=next_token)

    async def UpsertDocuments(
        self, request: pb.UpsertDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertDocumentsResponse:
        result = await self.collections.upsert(request.collection, request.documents)
        return pb.UpsertDocumentsResponse(
            statuses=[s.status for s in result.statuses],
            upserted=result.upserted,
            usage=common_pb2.Usage(input_tokens=result.tokens),
        )

    async def DeleteDocuments(
        self, request: pb.DeleteDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDocumentsResponse:
        deleted = await self.collections.delete_documents(request.collection, list(request.ids))
        return pb.DeleteDocumentsResponse(deleted=deleted)

    async def Search(self, request: pb.SearchRequest, context: grpc.aio.ServicerContext) -> pb.SearchResponse:
        query = request.WhichOneof("query")
        found = await self.collections.search(
            request.collection,
            request.top_k,
            text=request.text if query == "text" else None,
            vector=request.vector if query == "vector" else None,
            where=request.filter,
        )
        service = self.collections.embedder.repository.service
        return pb.SearchResponse(
            hits=[hit_proto(h, request.include_documents) for h in found.hits],
            usage=common_pb2.Usage(input_tokens=found.tokens),
            model=model_info(found.entry, service)
            if found.entry is not None
            else common_pb2.ModelInfo(name=found.model, service=service),
        )
