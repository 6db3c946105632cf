"""The default entity model (spaCy en_core_web_sm) through a real nlp service:
offsets that slice the text, the same spans as spaCy in process, and people,
organisations and places found on our small labelled set."""

from __future__ import annotations

import pytest

from lumen.nlp.v1 import nlp_pb2 as pb
from lumen.nlp.v1 import nlp_pb2_grpc as pb_grpc
from services.nlp.setup_models import SPACY_NER
from tests.nlp.conftest import model_path
from tests.nlp.entity_sentences import SENTENCES, score

pytestmark = pytest.mark.slow


async def test_default_entity_model_is_spacy_and_matches_it_in_process(nlp_channel, nlp_repository) -> None:
    import spacy

    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    texts = [s for s, _ in SENTENCES]
    response = await stub.ExtractEntities(pb.ExtractEntitiesRequest(texts=texts))
    assert response.model.name == SPACY_NER
    assert "PERSON" in response.model.properties["labels"].split(",")
    reference = spacy.load(model_path(nlp_repository, SPACY_NER))
    for text, result in zip(texts, response.results, strict=True):
        got = [(e.start_char, e.end_char, e.label) for e in result.entities]
        assert got == [(e.start_char, e.end_char, e.label_) for e in reference(text).ents]
        assert all(text[e.start_char : e.end_char] == e.text for e in result.entities)
    assert response.usage.input_tokens == sum(len(reference(t)) for t in texts)
    precision, recall = score([[(e.text, e.label) for e in r.entities] for r in response.results])
    # Measured 0.96 / 0.96 (README); spaCy's published NER F on OntoNotes is 0.84.
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)


async def test_offsets_are_code_points_and_none_gives_iob_tags(nlp_channel) -> None:
    stub = pb_grpc.TextAnalysisServiceStub(nlp_channel)
    text = "🙂 Yesterday José García flew from Madrid to Zürich."  # the emoji is one code point, two UTF-16 units
    spans = (await stub.ExtractEntities(pb.ExtractEntitiesRequest(texts=[text]))).results[0].entities
    assert all(text[e.start_char : e.end_char] == e.text for e in spans)
    assert [(e.text, e.label) for e in spans if e.label != "DATE"] == [
        ("José García", "PERSON"),
        ("Madrid", "GPE"),
        ("Zürich", "GPE"),
    ]
    tokens = await stub.ExtractEntities(pb.ExtractEntitiesRequest(texts=[text], aggregation=pb.ENTITY_AGGREGATION_NONE))
    tags = [(e.text, e.label) for e in tokens.results[0].entities]
    assert ("José", "B-PERSON") in tags and ("García", "I-PERSON") in tags
