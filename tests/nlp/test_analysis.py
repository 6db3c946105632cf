"""TextAnalysisService through a real nlp service, against the same models run in process."""

from __future__ import annotations

import json

import grpc
import grpc.aio
import numpy as np
import pytest

from lumen.common.v1 import common_pb2
from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from tests.nlp.conftest import model_path
from tests.nlp.tiny_models import CLASSES

pytestmark = pytest.mark.slow

REVIEWS = [
    "a gorgeous, witty and deeply moving film.",
    "a dull, boring and terrible film; i hated it.",
    "the plot is thin but the actors are wonderful.",
]


def ref(name: str) -> common_pb2.ModelRef:
    return common_pb2.ModelRef(name=name)


def scores_of(result) -> dict[str, float]:
    return {label.label: label.score for label in result.labels}


async def test_default_classifier_is_the_trained_head_and_matches_it_in_process(
    nlp_channel, nlp_repository, reference_minilm
) -> None:
    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    response = await stub.ClassifyText(pb.ClassifyTextRequest(texts=REVIEWS))
    assert response.model.name == "pang-lee-minilm-head"
    with np.load(nlp_repository / "pang-lee-minilm-head" / "head.npz") as head:
        logits = reference_minilm.encode(REVIEWS, normalize_embeddings=True) @ head["weights"] + head["bias"]
        labels = [str(label) for label in head["labels"]]
    want = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for result, row in zip(response.results, want, strict=True):
        assert result.status.code == 0
        got = scores_of(result)
        assert [label.label for label in result.labels] == [labels[i] for i in np.argsort(-row)]
        assert np.allclose([got[label] for label in labels], row, atol=1e-5)
    assert response.usage.input_tokens == sum(len(reference_minilm.tokenizer(t)["input_ids"]) for t in REVIEWS)


async def test_keras_lstm_matches_keras_in_process(nlp_channel, nlp_repository) -> None:
    import keras

    from shared.word_vocabulary import WordVocabulary

    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    response = await stub.ClassifyText(pb.ClassifyTextRequest(texts=REVIEWS, model=ref("pang-lee-lstm"), top_k=1))
    directory = nlp_repository / "pang-lee-lstm"
    config = json.loads((directory / "model.json").read_text())["parameters"]
    vocabulary = WordVocabulary.load(directory / "vocabulary.json", config["max_length"])
    ids, counts = vocabulary.encode(REVIEWS)
    p_positive = keras.saving.load_model(directory / "model.keras").predict(ids, verbose=0)[:, 0]
    for result, p in zip(response.results, p_positive, strict=True):
        assert len(result.labels) == 1
        best = "positive" if p >= 0.5 else "negative"
        assert result.labels[0].label == best
        assert result.labels[0].score == pytest.approx(max(p, 1 - p), abs=1e-5)
    assert response.usage.input_tokens == sum(counts)


async def test_hugging_face_classifier_matches_the_pipeline(nlp_channel, nlp_repository) -> None:
    from transformers import pipeline

    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    texts = ["Shares rallied after the earnings call.", "The striker scored twice. " * 40]  # the second is truncated
    response = await stub.ClassifyText(pb.ClassifyTextRequest(texts=texts, model=ref("tiny-topic-classifier")))
    classify = pipeline("text-classification", model=str(model_path(nlp_repository, "tiny-topic-classifier")))
    for result, want in zip(response.results, classify(texts, top_k=None, truncation=True), strict=True):
        assert [label.label for label in result.labels] == [w["label"] for w in want]
        assert np.allclose([label.score for label in result.labels], [w["score"] for w in want], atol=1e-5)
    assert {label.label for label in response.results[0].labels} == set(CLASSES)
    assert response.model.properties["max_seq_length"] == "64"


async def test_zero_shot_is_embedding_similarity(nlp_channel, reference_minilm) -> None:
    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    texts = ["The team won the championship final on penalties.", "The central bank raised interest rates."]
    labels = ["sports", "economy", "cooking"]
    response = await stub.ClassifyZeroShot(pb.ClassifyZeroShotRequest(texts=texts, candidate_labels=labels))
    multi = await stub.ClassifyZeroShot(
        pb.ClassifyZeroShotRequest(texts=texts, candidate_labels=labels, multi_label=True, top_k=2)
    )
    cosine = (
        reference_minilm.encode(texts, normalize_embeddings=True)
        @ reference_minilm.encode(labels, normalize_embeddings=True).T
    )
    single = np.exp(cosine * 20) / np.exp(cosine * 20).sum(axis=1, keepdims=True)
    for i, result in enumerate(response.results):
        got = scores_of(result)
        assert np.allclose([got[label] for label in labels], single[i], atol=1e-4)
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-4)
        assert len(multi.results[i].labels) == 2
        assert multi.results[i].labels[0].score == pytest.approx(np.clip(cosine[i], 0, 1).max(), abs=1e-4)
    # A real model, not a stand-in: each text's best label is the obvious one.
    assert [r.labels[0].label for r in response.results] == ["sports", "economy"]
    assert response.model.name == "minilm-zero-shot"


async def test_vader_sentiment_matches_the_lexicon(nlp_channel) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    texts = [*REVIEWS, "The meeting is at noon."]
    response = await stub.AnalyzeSentiment(pb.AnalyzeSentimentRequest(texts=texts))
    analyzer = SentimentIntensityAnalyzer()
    for text, result in zip(texts, response.results, strict=True):
        want = analyzer.polarity_scores(text)
        assert result.score == pytest.approx(want["compound"], abs=1e-6)
        got = {c.label: c.score for c in result.class_scores}
        assert got == pytest.approx({k: want[k] for k in ("neg", "neu", "pos")}, abs=1e-6)
        compound = want["compound"]
        if compound >= 0.05:
            assert result.label == pb.SENTIMENT_LABEL_POSITIVE
        elif compound <= -0.05:
            assert result.label == pb.SENTIMENT_LABEL_NEGATIVE
        else:
            assert result.label == pb.SENTIMENT_LABEL_NEUTRAL
    assert [r.label for r in response.results][:2] == [pb.SENTIMENT_LABEL_POSITIVE, pb.SENTIMENT_LABEL_NEGATIVE]
    assert response.results[3].label == pb.SENTIMENT_LABEL_NEUTRAL
    assert response.model.name == "vader"


async def test_learned_sentiment_score_is_p_positive_minus_p_negative(nlp_channel) -> None:
    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    sentiment = await stub.AnalyzeSentiment(
        pb.AnalyzeSentimentRequest(texts=REVIEWS, model=ref("pang-lee-minilm-head"))
    )
    classes = await stub.ClassifyText(pb.ClassifyTextRequest(texts=REVIEWS, model=ref("pang-lee-minilm-head")))
    for s, c in zip(sentiment.results, classes.results, strict=True):
        probs = scores_of(c)
        assert s.score == pytest.approx(probs["positive"] - probs["negative"], abs=1e-5)
        assert s.label == (pb.SENTIMENT_LABEL_POSITIVE if s.score > 0 else pb.SENTIMENT_LABEL_NEGATIVE)
    assert sentiment.results[0].label == pb.SENTIMENT_LABEL_POSITIVE
    assert sentiment.results[1].label == pb.SENTIMENT_LABEL_NEGATIVE


async def test_language_detection_matches_py3langid(nlp_channel) -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    texts = ["This is plainly English text.", "Ceci est un texte en français.", "Das ist ein deutscher Satz."]
    response = await stub.DetectLanguage(pb.DetectLanguageRequest(texts=texts, top_k=3))
    restricted = await stub.DetectLanguage(
        pb.DetectLanguageRequest(texts=texts, top_k=2, candidate_languages=["de", "nl"])
    )
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    for text, result in zip(texts, response.results, strict=True):
        want = identifier.rank(text)[:3]
        assert [lang.language_code for lang in result.languages] == [w[0] for w in want]
        assert np.allclose([lang.confidence for lang in result.languages], [w[1] for w in want], atol=1e-5)
    identifier.set_languages(["de", "nl"])
    for text, result in zip(texts, restricted.results, strict=True):
        want = identifier.rank(text)
        assert [lang.language_code for lang in result.languages] == [w[0] for w in want]
        assert np.allclose([lang.confidence for lang in result.languages], [w[1] for w in want], atol=1e-4)
    assert [r.languages[0].language_code for r in response.results] == ["en", "fr", "de"]


@pytest.mark.parametrize(
    ("aggregation", "strategy"),
    [
        (pb.ENTITY_AGGREGATION_UNSPECIFIED, "simple"),
        (pb.ENTITY_AGGREGATION_NONE, "none"),
        (pb.ENTITY_AGGREGATION_FIRST, "first"),
        (pb.ENTITY_AGGREGATION_MAX, "max"),
    ],
)
async def test_entities_match_the_token_classification_pipeline(
    nlp_channel, nlp_repository, aggregation, strategy
) -> None:
    from transformers import pipeline

    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    long_text = " ".join(f"Ada Lovelace met Charles Babbage in London, visit {i}." for i in range(12))
    texts = ["Ada Lovelace was born in London.", long_text]
    response = await stub.ExtractEntities(
        pb.ExtractEntitiesRequest(texts=texts, model=ref("tiny-entities"), aggregation=aggregation)
    )
    tagger = pipeline("token-classification", model=str(model_path(nlp_repository, "tiny-entities")))
    windows = {} if strategy == "none" else {"stride": 16}
    for text, result in zip(texts, response.results, strict=True):
        want = sorted(tagger(text, aggregation_strategy=strategy, **windows), key=lambda e: (e["start"], e["end"]))
        got = result.entities
        assert [(e.start_char, e.end_char, e.label) for e in got] == [
            (w["start"], w["end"], w.get("entity_group") or w["entity"]) for w in want
        ]
        assert np.allclose([e.score for e in got], [w["score"] for w in want], atol=1e-5)
        assert all(e.text == text[e.start_char : e.end_char] for e in got)
    if strategy != "none":
        # Entities are found past the first 64-token window: the long text is read in windows.
        assert max(e.end_char for e in response.results[1].entities) > len(long_text) // 2


async def test_entities_min_score_filters(nlp_channel) -> None:
    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    request = pb.ExtractEntitiesRequest(texts=["Ada Lovelace was born in London."], model=ref("tiny-entities"))
    everything = (await stub.ExtractEntities(request)).results[0].entities
    request.min_score = float(np.median([e.score for e in everything]))
    kept = (await stub.ExtractEntities(request)).results[0].entities
    assert [e for e in everything if e.score >= request.min_score] == list(kept)


async def test_a_bad_text_gets_its_own_status_and_the_others_are_answered(nlp_channel) -> None:
    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    response = await stub.AnalyzeSentiment(pb.AnalyzeSentimentRequest(texts=["fine day", "  ", "x" * 100_001]))
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [r.status.code for r in response.results] == [0, invalid, invalid]
    assert "texts[1]" in response.results[1].status.message
    assert "texts[2]" in response.results[2].status.message
    assert response.results[0].label == pb.SENTIMENT_LABEL_POSITIVE


BAD_REQUESTS = [
    ("ClassifyText", pb.ClassifyTextRequest(), grpc.StatusCode.INVALID_ARGUMENT, "texts"),
    ("ClassifyText", pb.ClassifyTextRequest(texts=["x"] * 65), grpc.StatusCode.INVALID_ARGUMENT, "texts"),
    ("ClassifyText", pb.ClassifyTextRequest(texts=["x"], top_k=1001), grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
    ("ClassifyText", pb.ClassifyTextRequest(texts=["x"], model=ref("nope")), grpc.StatusCode.NOT_FOUND, "model"),
    (
        "ClassifyText",
        pb.ClassifyTextRequest(texts=["x"], model=ref("vader")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "model",
    ),
    (
        "ClassifyText",
        pb.ClassifyTextRequest(texts=["x"], model=common_pb2.ModelRef(name="vader", version="7")),
        grpc.StatusCode.NOT_FOUND,
        "model.version",
    ),
    # Past the encoder's character budget of one call (LUMEN_NLP_MAX_ENCODER_CHARS, 16,384).
    ("ClassifyText", pb.ClassifyTextRequest(texts=["a" * 9000, "b" * 9000]), grpc.StatusCode.INVALID_ARGUMENT, "texts"),
    (
        "ClassifyZeroShot",
        pb.ClassifyZeroShotRequest(texts=["a" * 8000] * 2, candidate_labels=[f"{i}" * 200 for i in range(3)]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "texts",
    ),
    ("ClassifyZeroShot", pb.ClassifyZeroShotRequest(texts=["x"]), grpc.StatusCode.INVALID_ARGUMENT, "candidate_labels"),
    (
        "ClassifyZeroShot",
        pb.ClassifyZeroShotRequest(texts=["x"], candidate_labels=["a", "a"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "candidate_labels[1]",
    ),
    (
        "ClassifyZeroShot",
        pb.ClassifyZeroShotRequest(texts=["x"], candidate_labels=["a"], hypothesis_template="no slot"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "hypothesis_template",
    ),
    (
        "AnalyzeSentiment",
        pb.AnalyzeSentimentRequest(texts=["x"], model=ref("py3langid")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "model",
    ),
    (
        "AnalyzeSentiment",
        pb.AnalyzeSentimentRequest(texts=["x"], model=ref("tiny-topic-classifier")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "model",
    ),
    ("DetectLanguage", pb.DetectLanguageRequest(texts=["x"], top_k=11), grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
    (
        "DetectLanguage",
        pb.DetectLanguageRequest(texts=["x"], candidate_languages=["en", "xx"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "candidate_languages[1]",
    ),
    (
        "ExtractEntities",
        pb.ExtractEntitiesRequest(texts=["Ada"], model=ref("conll-ner")),
        grpc.StatusCode.NOT_FOUND,
        "model",
    ),
    (
        "ExtractEntities",
        pb.ExtractEntitiesRequest(texts=["Ada"], model=ref("tiny-entities"), min_score=float("nan")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "min_score",
    ),
    (  # past LUMEN_NLP_MAX_ENTITY_CHARS (32,768 characters of all texts together)
        "ExtractEntities",
        pb.ExtractEntitiesRequest(texts=["Ada " * 3000] * 3, model=ref("tiny-entities")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "texts",
    ),
    (
        "ExtractEntities",
        pb.ExtractEntitiesRequest(texts=["Ada"], model=ref("tiny-entities"), aggregation=99),
        grpc.StatusCode.INVALID_ARGUMENT,
        "aggregation",
    ),
]


@pytest.mark.parametrize(("method", "request_", "code", "field"), BAD_REQUESTS)
async def test_bad_requests_get_a_clear_status_and_the_service_keeps_serving(
    nlp_channel, method, request_, code, field
) -> None:
    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(stub, method)(request_)
    assert error.value.code() is code
    assert field in error.value.details()
    ok = await stub.DetectLanguage(pb.DetectLanguageRequest(texts=["still serving"]))
    assert ok.results[0].status.code == 0
