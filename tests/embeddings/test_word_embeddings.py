"""Word vectors through a real service, against gensim's own answers on the same model file."""

from __future__ import annotations

import shutil

import grpc
import grpc.aio
import numpy as np
import pytest
from google.rpc import code_pb2

from lumen.common.v1 import common_pb2, common_pb2_grpc
from lumen.embeddings.v1 import embeddings_pb2 as pb
from lumen.embeddings.v1 import embeddings_pb2_grpc as pb_grpc
from services.embeddings.setup_models import GLOVE_MODEL, WORD_MODEL
from shared.model import write_config
from shared.vectors import from_proto

pytestmark = pytest.mark.slow


def stub(channel: grpc.aio.Channel) -> pb_grpc.WordEmbeddingServiceStub:
    return pb_grpc.WordEmbeddingServiceStub(channel)


async def test_word_models_are_listed_with_their_properties(
    embeddings_channel, reference_word_vectors, reference_word2vec
) -> None:
    repo = common_pb2_grpc.ModelRepositoryServiceStub(embeddings_channel)
    listed = await repo.ListModels(common_pb2.ListModelsRequest(task="word-embedding"))
    models = {m.name: m for m in listed.models}
    assert set(models) == {GLOVE_MODEL, WORD_MODEL}
    for name, reference in ((GLOVE_MODEL, reference_word_vectors), (WORD_MODEL, reference_word2vec)):
        model = models[name]
        assert model.state == common_pb2.MODEL_STATE_READY
        assert model.framework == "gensim-keyedvectors"
        assert model.properties["dimension"] == str(reference.vector_size)
        assert model.properties["vocabulary"] == str(len(reference))


def test_glove_is_memory_mapped_not_copied(embeddings_service) -> None:
    [entry] = [e for e in embeddings_service.repository.entries("word-embedding") if e.config.name == GLOVE_MODEL]
    assert isinstance(entry.model.kv.vectors, np.memmap)


async def test_dog_has_neighbours_a_person_accepts(embeddings_channel) -> None:
    response = await stub(embeddings_channel).MostSimilarWords(pb.MostSimilarWordsRequest(positive=["dog"], top_k=10))
    assert response.model.name == GLOVE_MODEL
    neighbours = [w.word for w in response.words]
    assert {"cat", "dogs", "puppy"} <= set(neighbours), neighbours
    analogy = await stub(embeddings_channel).MostSimilarWords(
        pb.MostSimilarWordsRequest(positive=["paris", "germany"], negative=["france"], top_k=1)
    )
    assert analogy.words[0].word == "berlin"


async def test_word2vec_is_kept_as_a_trained_model_by_name(embeddings_channel, reference_word2vec) -> None:
    lee = common_pb2.ModelRef(name=WORD_MODEL)
    response = await stub(embeddings_channel).MostSimilarWords(
        pb.MostSimilarWordsRequest(positive=["president"], top_k=5, model=lee)
    )
    assert response.model.name == WORD_MODEL
    assert [w.word for w in response.words] == [w for w, _ in reference_word2vec.most_similar("president", topn=5)]
    vectors = await stub(embeddings_channel).GetWordVectors(pb.GetWordVectorsRequest(words=["police"], model=lee))
    np.testing.assert_array_equal(from_proto(vectors.vectors[0].vector), reference_word2vec["police"])


async def test_word_vectors_equal_gensim_and_a_missing_word_is_a_per_word_status(
    embeddings_channel, reference_word_vectors
) -> None:
    words = ["president", "government", "qwertyuiopasdf", "police"]
    for encoding in (common_pb2.VECTOR_ENCODING_FLOAT, common_pb2.VECTOR_ENCODING_F32_BYTES):
        response = await stub(embeddings_channel).GetWordVectors(
            pb.GetWordVectorsRequest(words=words, encoding=encoding)
        )
        assert [v.word for v in response.vectors] == words
        for entry in response.vectors:
            if entry.word == "qwertyuiopasdf":
                assert entry.status.code == code_pb2.NOT_FOUND
                assert "qwertyuiopasdf" in entry.status.message and "words[2]" in entry.status.message
                assert not entry.HasField("vector")
            else:
                assert entry.status.code == code_pb2.OK
                np.testing.assert_array_equal(from_proto(entry.vector), reference_word_vectors[entry.word])
    assert response.model.name == GLOVE_MODEL


async def test_lookups_are_lower_cased_for_a_lower_cased_model(embeddings_channel, reference_word_vectors) -> None:
    response = await stub(embeddings_channel).GetWordVectors(pb.GetWordVectorsRequest(words=["President"]))
    np.testing.assert_array_equal(from_proto(response.vectors[0].vector), reference_word_vectors["president"])


@pytest.mark.parametrize(
    ("positive", "negative", "top_k"),
    [(["president"], [], 10), (["president", "australia"], ["bush"], 5), ([], ["police"], 3)],
    ids=["neighbours", "analogy", "negative-only"],
)
async def test_most_similar_equals_gensim(
    embeddings_channel, reference_word_vectors, positive, negative, top_k
) -> None:
    response = await stub(embeddings_channel).MostSimilarWords(
        pb.MostSimilarWordsRequest(positive=positive, negative=negative, top_k=top_k)
    )
    want = reference_word_vectors.most_similar(positive=positive, negative=negative, topn=top_k)
    assert [w.word for w in response.words] == [w for w, _ in want]
    assert np.allclose([w.score for w in response.words], [s for _, s in want], atol=1e-6)


async def test_word_similarity_equals_gensim(embeddings_channel, reference_word_vectors) -> None:
    response = await stub(embeddings_channel).WordSimilarity(
        pb.WordSimilarityRequest(word_a="police", word_b="officers")
    )
    assert response.score == pytest.approx(float(reference_word_vectors.similarity("police", "officers")), abs=1e-6)


@pytest.mark.parametrize("fmt", ["word2vec-text", "word2vec-binary"])
async def test_a_word2vec_format_file_loads_at_run_time(
    embeddings_channel, embeddings_repository, reference_word2vec, fmt
) -> None:
    """Any word2vec-format file serves too: export the model, load it by name, get the same vectors."""
    name = f"lee-{fmt}"
    directory = embeddings_repository / name
    directory.mkdir(exist_ok=True)
    filename = "vectors.bin" if fmt == "word2vec-binary" else "vectors.txt"
    reference_word2vec.save_word2vec_format(str(directory / filename), binary=fmt == "word2vec-binary")
    write_config(
        embeddings_repository,
        name,
        {"task": "word-embedding", "framework": "gensim-keyedvectors", "path": filename, "parameters": {"format": fmt}},
    )
    repo = common_pb2_grpc.ModelRepositoryServiceStub(embeddings_channel)
    loaded = await repo.LoadModel(common_pb2.LoadModelRequest(name=name))
    assert loaded.model.state == common_pb2.MODEL_STATE_READY, loaded.model.error
    try:
        response = await stub(embeddings_channel).GetWordVectors(
            pb.GetWordVectorsRequest(words=["police"], model=common_pb2.ModelRef(name=name))
        )
        # The text format writes decimals: equal to gensim's vector up to print precision.
        assert np.allclose(from_proto(response.vectors[0].vector), reference_word2vec["police"], atol=1e-5)
        similar = await stub(embeddings_channel).MostSimilarWords(
            pb.MostSimilarWordsRequest(positive=["police"], top_k=3, model=common_pb2.ModelRef(name=name))
        )
        assert [w.word for w in similar.words] == [w for w, _ in reference_word2vec.most_similar("police", topn=3)]
        await repo.UnloadModel(common_pb2.UnloadModelRequest(name=name))
        with pytest.raises(grpc.aio.AioRpcError) as unloaded:
            await stub(embeddings_channel).GetWordVectors(
                pb.GetWordVectorsRequest(words=["police"], model=common_pb2.ModelRef(name=name))
            )
        assert unloaded.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "LoadModel" in unloaded.value.details()
    finally:
        shutil.rmtree(directory)


BAD_REQUESTS = [
    ("GetWordVectors", pb.GetWordVectorsRequest(), grpc.StatusCode.INVALID_ARGUMENT, "words"),
    ("GetWordVectors", pb.GetWordVectorsRequest(words=["ok", ""]), grpc.StatusCode.INVALID_ARGUMENT, "words[1]"),
    ("GetWordVectors", pb.GetWordVectorsRequest(words=["w"] * 1025), grpc.StatusCode.INVALID_ARGUMENT, "words"),
    ("GetWordVectors", pb.GetWordVectorsRequest(words=["w" * 257]), grpc.StatusCode.INVALID_ARGUMENT, "words[0]"),
    (
        "GetWordVectors",
        pb.GetWordVectorsRequest(words=["police"], model=common_pb2.ModelRef(name="all-minilm-l6-v2")),
        grpc.StatusCode.INVALID_ARGUMENT,  # a sentence model: another task (shared.repository.resolve)
        "model.name",
    ),
    ("MostSimilarWords", pb.MostSimilarWordsRequest(top_k=5), grpc.StatusCode.INVALID_ARGUMENT, "positive"),
    ("MostSimilarWords", pb.MostSimilarWordsRequest(positive=["police"]), grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
    (
        "MostSimilarWords",
        pb.MostSimilarWordsRequest(positive=["police"], top_k=100000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "top_k",
    ),
    (
        "MostSimilarWords",
        pb.MostSimilarWordsRequest(positive=["qwertyuiopasdf"], top_k=5),
        grpc.StatusCode.NOT_FOUND,
        "positive[0]",
    ),
    (
        "MostSimilarWords",
        pb.MostSimilarWordsRequest(positive=["police"], negative=["", "x"], top_k=5),
        grpc.StatusCode.INVALID_ARGUMENT,
        "negative[0]",
    ),
    (
        "MostSimilarWords",
        pb.MostSimilarWordsRequest(positive=["police"], negative=["qwertyuiopasdf"], top_k=5),
        grpc.StatusCode.NOT_FOUND,
        "negative[0]",
    ),
    ("WordSimilarity", pb.WordSimilarityRequest(word_b="police"), grpc.StatusCode.INVALID_ARGUMENT, "word_a"),
    (
        "WordSimilarity",
        pb.WordSimilarityRequest(word_a="police", word_b="qwertyuiopasdf"),
        grpc.StatusCode.NOT_FOUND,
        "word_b",
    ),
]


@pytest.mark.parametrize(("method", "request_", "code", "field"), BAD_REQUESTS)
async def test_bad_input_gets_a_clear_status_and_service_keeps_serving(
    embeddings_channel, method, request_, code, field
) -> None:
    words = stub(embeddings_channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(words, method)(request_)
    assert error.value.code() is code
    assert field in error.value.details()
    ok = await words.WordSimilarity(pb.WordSimilarityRequest(word_a="police", word_b="police"))
    assert ok.score == pytest.approx(1.0, abs=1e-5)


async def test_word_calls_report_the_words_they_read(embeddings_channel) -> None:
    got = await stub(embeddings_channel).GetWordVectors(pb.GetWordVectorsRequest(words=["president", "bush", "zzqx"]))
    assert got.usage.input_tokens == 3
    near = await stub(embeddings_channel).MostSimilarWords(
        pb.MostSimilarWordsRequest(positive=["president", "australia"], negative=["bush"], top_k=2)
    )
    assert near.usage.input_tokens == 3
    pair = await stub(embeddings_channel).WordSimilarity(pb.WordSimilarityRequest(word_a="president", word_b="police"))
    assert pair.usage.input_tokens == 2
