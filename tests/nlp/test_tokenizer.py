"""TokenizerService through a real nlp service, against the same tokenizers in process."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from lumen.common.v1 import common_pb2
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from tests.nlp.conftest import LLM, model_path

pytestmark = pytest.mark.slow

TEXTS = ["Hello, world!", "naïve café — déjà vu", ""]


@pytest.mark.parametrize("special", [False, True])
async def test_tokenize_matches_the_llm_tokenizer(nlp_channel, reference_llm, special) -> None:
    _, tokenizer = reference_llm
    stub = pb_grpc.TokenizerServiceStub(nlp_channel)
    response = await stub.Tokenize(pb.TokenizeRequest(texts=TEXTS, add_special_tokens=special))
    assert response.model.name == LLM
    for text, result in zip(TEXTS, response.results, strict=True):
        assert result.status.code == 0
        want = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
        assert [t.id for t in result.tokens] == want["input_ids"]
        assert [t.piece for t in result.tokens] == tokenizer.convert_ids_to_tokens(want["input_ids"])
        assert [(t.start_char, t.end_char) for t in result.tokens] == [tuple(o) for o in want["offset_mapping"]]


async def test_offsets_are_code_points_of_the_text(nlp_channel, nlp_repository) -> None:
    """With a WordPiece tokenizer (tiny classifier's), each token's span slices the original text."""
    from transformers import AutoTokenizer

    stub = pb_grpc.TokenizerServiceStub(nlp_channel)
    text = "Zoë visited Kraków"
    response = await stub.Tokenize(
        pb.TokenizeRequest(
            texts=[text], model=common_pb2.ModelRef(name="tiny-topic-classifier"), add_special_tokens=True
        )
    )
    tokens = response.results[0].tokens
    tokenizer = AutoTokenizer.from_pretrained(model_path(nlp_repository, "tiny-topic-classifier"))
    assert [t.id for t in tokens] == tokenizer(text)["input_ids"]
    assert tokens[0].piece == "[CLS]" and tokens[0].start_char == tokens[0].end_char == 0
    assert tokens[-1].piece == "[SEP]" and tokens[-1].start_char == tokens[-1].end_char == len(text)
    assert "".join(text[t.start_char : t.end_char] for t in tokens[1:-1]).replace(" ", "") == text.replace(" ", "")


async def test_count_tokens_for_texts_and_for_a_chat(nlp_channel, reference_llm) -> None:
    _, tokenizer = reference_llm
    stub = pb_grpc.TokenizerServiceStub(nlp_channel)
    texts = ["one two three", "x" * 100_001, "four"]
    counted = await stub.CountTokens(pb.CountTokensRequest(texts=texts))
    assert counted.counts[0].count == len(tokenizer(texts[0])["input_ids"])
    assert counted.counts[1].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert counted.total_tokens == sum(len(tokenizer(t)["input_ids"]) for t in (texts[0], texts[2]))
    assert counted.context_length == 8192
    chat = pb.Conversation(
        messages=[
            pb.ChatMessage(role=pb.CHAT_ROLE_SYSTEM, content="Be brief."),
            pb.ChatMessage(role=pb.CHAT_ROLE_USER, content="Hi!"),
        ]
    )
    counted_chat = await stub.CountTokens(pb.CountTokensRequest(chat=chat))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert counted_chat.counts[0].count == len(tokenizer(rendered, add_special_tokens=False)["input_ids"])


@pytest.mark.parametrize(
    ("method", "request_", "code", "field"),
    [
        ("Tokenize", pb.TokenizeRequest(), grpc.StatusCode.INVALID_ARGUMENT, "texts"),
        (
            "Tokenize",
            pb.TokenizeRequest(texts=["x"], model=common_pb2.ModelRef(name="vader")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "model",
        ),
        (
            "Tokenize",
            pb.TokenizeRequest(texts=["x"], model=common_pb2.ModelRef(name="unknown")),
            grpc.StatusCode.NOT_FOUND,
            "model",
        ),
        (  # past LUMEN_NLP_MAX_TOKENIZE_CHARS (500,000 characters of all texts together)
            "Tokenize",
            pb.TokenizeRequest(texts=["a" * 90_000] * 6),
            grpc.StatusCode.INVALID_ARGUMENT,
            "texts",
        ),
        ("CountTokens", pb.CountTokensRequest(), grpc.StatusCode.INVALID_ARGUMENT, "texts"),
        (
            "CountTokens",
            pb.CountTokensRequest(
                texts=["x"], chat=pb.Conversation(messages=[pb.ChatMessage(role=pb.CHAT_ROLE_USER, content="x")])
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "texts",
        ),
        (
            "CountTokens",
            pb.CountTokensRequest(
                chat=pb.Conversation(messages=[pb.ChatMessage(role=pb.CHAT_ROLE_USER, content="x")]),
                model=common_pb2.ModelRef(name="tiny-topic-classifier"),
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "chat",
        ),
    ],
)
async def test_bad_tokenizer_requests(nlp_channel, method, request_, code, field) -> None:
    stub = pb_grpc.TokenizerServiceStub(nlp_channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(stub, method)(request_)
    assert error.value.code() is code
    assert field in error.value.details()


async def test_tokenizer_calls_report_the_tokens_they_read(nlp_channel, reference_llm) -> None:
    _, tokenizer = reference_llm
    stub = pb_grpc.TokenizerServiceStub(nlp_channel)
    want = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in TEXTS)
    tokenized = await stub.Tokenize(pb.TokenizeRequest(texts=TEXTS))
    assert tokenized.usage.input_tokens == want > 0
    counted = await stub.CountTokens(pb.CountTokensRequest(texts=TEXTS))
    assert counted.usage.input_tokens == counted.total_tokens == want
