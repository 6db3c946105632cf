"""lumen.nlp.v1.TokenizerService: protos in, one await on Tokens, protos out."""

from __future__ import annotations

import grpc

from lumen.common.v1 import common_pb2
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp.convert import chat, status
from services.nlp.tokens import Tokens
from shared.errors import LumenError
from shared.repository_servicer import model_info


class TokenizerServicer(pb_grpc.TokenizerServiceServicer):
    def __init__(self, tokens: Tokens, service: str) -> None:
        self.tokens = tokens
        self.service = service

    async def Tokenize(self, request: pb.TokenizeRequest, context: grpc.aio.ServicerContext) -> pb.TokenizeResponse:
        results, entry = await self.tokens.tokenize(
            list(request.texts), request.model.name, request.model.version, request.add_special_tokens
        )
        out = []
        for r in results:
            pieces = [] if isinstance(r, LumenError) else r
            out.append(
                pb.TokenizedText(
                    tokens=[pb.Token(id=p.id, piece=p.piece, start_char=p.start, end_char=p.end) for p in pieces],
                    status=status(r),
                )
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
        counts = [
            pb.TokenCount(status=status(c)) if isinstance(c, LumenError) else pb.TokenCount(count=c, status=status(c))
            for c in counted.counts
        ]
        total = sum(c.count for c in counts)
        return pb.CountTokensResponse(
            counts=counts,
            total_tokens=total,
            usage=common_pb2.Usage(input_tokens=total),
            context_length=counted.context_length,
            model=model_info(counted.entry, self.service),
        )
