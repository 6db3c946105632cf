"""lumen.nlp.v1.TokenizerService: protos in, one await on Tokens, protos out."""

from __future__ import annotations

import grpc

from lumen.common.v1 import common_pb2
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp.convert import chat
from services.nlp.tokens import Tokens
from shared.repository_servicer import model_info
from shared.results import item_messages


class TokenizerServicer(pb_grpc.TokenizerServiceServicer):
    def __init__(self, tokens: Tokens, service: str) -> None:
        self.tokens = tokens
        self.service = service

    async def Tokenize(self, request: pb.TokenizeRequest, context: grpc.aio.ServicerContext) -> pb.TokenizeResponse:
        results, entry = await self.tokens.tokenize(
            list(request.texts), request.model.name, request.model.version, request.add_special_tokens
        )
        out = item_messages(
            results,
            pb.TokenizedText,
            lambda pieces: {
                "tokens": [pb.Token(id=p.id, piece=p.piece, start_char=p.start, end_char=p.end) for p in pieces]
            },
        )
        tokens = sum(len(t.tokens) for t in out)
        return pb.TokenizeResponse(
            results=out, model=model_info(entry, self.service), usage=common_pb2.Usage(input_tokens=tokens)
        )

    async def CountTokens(
        self, request: pb.CountTokensRequest, context: grpc.aio.ServicerContext
    ) -> pb.CountTokensResponse:
        conversation = chat(request.chat) if request.HasField("chat") else None
        counted = await self.tokens.count(
            list(request.texts), conversation, request.model.name, request.model.version, request.add_special_tokens
        )
        counts = item_messages(counted.counts, pb.TokenCount, lambda count: {"count": count})
        total = sum(c.count for c in counts)
        return pb.CountTokensResponse(
            counts=counts,
            total_tokens=total,
            usage=common_pb2.Usage(input_tokens=total),
            context_length=counted.context_length,
            model=model_info(counted.entry, self.service),
        )
