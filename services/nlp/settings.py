"""Settings of the nlp service (environment prefix LUMEN_NLP_)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import ModelServerSettings, setting


@dataclass
class NlpSettings(ModelServerSettings):
    port: int = setting(50052, "TCP port of the nlp service.")
    max_text_chars: int = setting(100_000, "Longest text (or prompt, or chat in total) accepted, in characters.")
    max_call_chars: int = setting(
        1_000_000,
        "Most characters of all texts of one text-analysis call together: bounds a call's CPU time "
        "(VADER reads ~1 us a character here; see make bench-limits).",
    )
    max_encoder_chars: int = setting(
        16_384,
        "Most characters of all texts (and candidate labels) of one call that a neural encoder reads: "
        "ClassifyText, ClassifyZeroShot, AnalyzeSentiment with a learned model. Bounds the call's CPU time "
        "as LUMEN_EMBEDDINGS_MAX_CALL_CHARS does (64 x 15,625 characters took 7.4 s CPU; see make bench-limits).",
    )
    max_entity_chars: int = setting(
        32_768,
        "Most characters of all texts of one ExtractEntities call together: spaCy reads ~46 us and holds "
        "~3.5 KB a character here (32 texts sharing 1,000,000 characters took 46 s CPU and 3.5 GB; see make "
        "bench-limits).",
    )
    max_tokenize_chars: int = setting(
        500_000,
        "Most characters of all texts of one Tokenize call together: each token comes back with its offsets "
        "(1,000,000 characters took 2.5 s CPU; CountTokens keeps LUMEN_NLP_MAX_CALL_CHARS).",
    )
    max_new_tokens: int = setting(
        1024,
        "Most tokens one generation call may generate (GenerationParams.max_new_tokens); TransformText shares "
        "it among its texts. Each costs ~12 ms CPU with SmolLM2-135M here.",
    )
    max_prompt_tokens: int = setting(
        1024,
        "Most prompt tokens one generation call prefills: the prompt or chat of Generate and GenerateStream, "
        "all texts with their instructions of an instruct-model TransformText. Prefill costs ~5 ms CPU a token "
        "here (a 6,000-character prompt, ~1,500 tokens, took 7.7 s; 16 texts of 1,000 characters 39 s).",
    )
    default_new_tokens: int = setting(256, "Tokens generated when a request leaves max_new_tokens at 0.")
    default_classifier: str = setting(
        "pang-lee-minilm-head",
        "Model of ClassifyText when the request names none (if absent: the repository's default classifier).",
    )
    default_sentiment: str = setting("vader", "Model of AnalyzeSentiment when the request names none.")
    default_language: str = setting("py3langid", "Model of DetectLanguage when the request names none.")
    default_zero_shot: str = setting(
        "minilm-zero-shot",
        "Model of ClassifyZeroShot when the request names none (if absent: the repository's default).",
    )
    default_entities: str = setting(
        "", "Model of ExtractEntities when the request names none; empty: the repository's default, if any."
    )
    default_generator: str = setting(
        "smollm2-135m-instruct",
        "Causal LM of Generate, GenerateStream, TransformText and the tokenizer RPCs when the request names none.",
    )
