"""What the nlp service serves: its runtimes (one per model family) and its servicers.

Imported only after the device is isolated (see shared.model_service); the
runtimes import torch, TensorFlow and the rest inside load().
"""

from __future__ import annotations

from lumen.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from services.nlp import (
    runtime_causal_lm,
    runtime_embedding_head,
    runtime_hf_classifier,
    runtime_hf_entities,
    runtime_keras_next_word,
    runtime_keras_text,
    runtime_langid,
    runtime_seq2seq,
    runtime_spacy,
    runtime_vader,
    runtime_zero_shot,
)
from services.nlp.analysis import TextAnalysis
from services.nlp.generation import Generation
from services.nlp.servicer_analysis import TextAnalysisServicer
from services.nlp.servicer_generation import TextGenerationServicer
from services.nlp.servicer_tokenizer import TokenizerServicer
from services.nlp.settings import NlpSettings
from services.nlp.tokens import Tokens
from shared.repository import ModelFactory, ModelRepository
from shared.server import Registration

FACTORIES: dict[str, ModelFactory] = {
    runtime_hf_classifier.FRAMEWORK: runtime_hf_classifier.HfSequenceClassifier,
    runtime_keras_text.FRAMEWORK: runtime_keras_text.KerasTextClassifier,
    runtime_embedding_head.FRAMEWORK: runtime_embedding_head.EmbeddingHeadClassifier,
    runtime_zero_shot.FRAMEWORK: runtime_zero_shot.EmbeddingZeroShot,
    runtime_vader.FRAMEWORK: runtime_vader.VaderSentiment,
    runtime_langid.FRAMEWORK: runtime_langid.LangidModel,
    runtime_hf_entities.FRAMEWORK: runtime_hf_entities.HfEntityTagger,
    runtime_spacy.FRAMEWORK: runtime_spacy.SpacyEntityTagger,
    runtime_causal_lm.FRAMEWORK: runtime_causal_lm.CausalLM,
    runtime_seq2seq.FRAMEWORK: runtime_seq2seq.Seq2SeqModel,
    runtime_keras_next_word.FRAMEWORK: runtime_keras_next_word.KerasNextWord,
}


def registrations(repository: ModelRepository, settings: NlpSettings) -> list[Registration]:  # type: ignore[override]
    services = nlp_pb2.DESCRIPTOR.services_by_name
    name = repository.service
    return [
        Registration(
            nlp_pb2_grpc.add_TextAnalysisServiceServicer_to_server,
            TextAnalysisServicer(TextAnalysis(repository, settings), name),
            services["TextAnalysisService"].full_name,
        ),
        Registration(
            nlp_pb2_grpc.add_TextGenerationServiceServicer_to_server,
            TextGenerationServicer(Generation(repository, settings), name),
            services["TextGenerationService"].full_name,
        ),
        Registration(
            nlp_pb2_grpc.add_TokenizerServiceServicer_to_server,
            TokenizerServicer(Tokens(repository, settings), name),
            services["TokenizerService"].full_name,
        ),
    ]
