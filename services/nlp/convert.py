"""Conversions between lumen.nlp.v1 messages and the data planes' Python values."""

from __future__ import annotations

from lumen.nlp.v1 import nlp_pb2 as pb
from services.nlp.generation_params import ASSISTANT, SYSTEM, USER, DecodingRequest
from services.nlp.generation_scheduler import LENGTH, STOP, STOP_SEQUENCE
from services.nlp.sentiment_labels import NEGATIVE, NEUTRAL, POSITIVE

ROLES = {pb.CHAT_ROLE_SYSTEM: SYSTEM, pb.CHAT_ROLE_USER: USER, pb.CHAT_ROLE_ASSISTANT: ASSISTANT}
FINISH = {STOP: pb.FINISH_REASON_STOP, LENGTH: pb.FINISH_REASON_LENGTH, STOP_SEQUENCE: pb.FINISH_REASON_STOP_SEQUENCE}
SENTIMENT = {
    POSITIVE: pb.SENTIMENT_LABEL_POSITIVE,
    NEGATIVE: pb.SENTIMENT_LABEL_NEGATIVE,
    NEUTRAL: pb.SENTIMENT_LABEL_NEUTRAL,
}
AGGREGATION = {
    pb.ENTITY_AGGREGATION_UNSPECIFIED: "simple",
    pb.ENTITY_AGGREGATION_NONE: "none",
    pb.ENTITY_AGGREGATION_SIMPLE: "simple",
    pb.ENTITY_AGGREGATION_FIRST: "first",
    pb.ENTITY_AGGREGATION_AVERAGE: "average",
    pb.ENTITY_AGGREGATION_MAX: "max",
}
TASKS = {pb.TEXT_TASK_SUMMARIZE: "summarize", pb.TEXT_TASK_TRANSLATE: "translate", pb.TEXT_TASK_REWRITE: "rewrite"}


def decoding(params: pb.GenerationParams) -> DecodingRequest:
    return DecodingRequest(
        max_new_tokens=params.max_new_tokens,
        temperature=params.temperature if params.HasField("temperature") else None,
        top_p=params.top_p if params.HasField("top_p") else None,
        top_k=params.top_k if params.HasField("top_k") else None,
        seed=params.seed if params.HasField("seed") else None,
        stop=tuple(params.stop),
    )


def chat(conversation: pb.Conversation) -> list[tuple[str, str]]:
    # An unknown role becomes "" so that check_chat names it.
    return [(ROLES.get(m.role, ""), m.content) for m in conversation.messages]


def generation_input(
    request: pb.GenerateRequest | pb.GenerateStreamRequest,
) -> tuple[str | None, list[tuple[str, str]] | None]:
    which = request.WhichOneof("input")
    return (request.prompt if which == "prompt" else None, chat(request.chat) if which == "chat" else None)
