"""Task names of the nlp service's models (the "task" of model.json)."""

from __future__ import annotations

TEXT_CLASSIFICATION = "text-classification"
SENTIMENT = "sentiment"
LANGUAGE_DETECTION = "language-detection"
ZERO_SHOT = "zero-shot-classification"
TOKEN_CLASSIFICATION = "token-classification"
TEXT_GENERATION = "text-generation"
TEXT_TO_TEXT = "text2text-generation"

ALL = (
    TEXT_CLASSIFICATION,
    SENTIMENT,
    LANGUAGE_DETECTION,
    ZERO_SHOT,
    TOKEN_CLASSIFICATION,
    TEXT_GENERATION,
    TEXT_TO_TEXT,
)

# A sentiment classifier is a text classifier too: ClassifyText takes both.
CLASSIFIERS = (TEXT_CLASSIFICATION, SENTIMENT)
# Every model with a tokenizer may answer the tokenizer RPCs.
WITH_TOKENIZER = (TEXT_GENERATION, TEXT_TO_TEXT, TEXT_CLASSIFICATION, SENTIMENT, TOKEN_CLASSIFICATION, ZERO_SHOT)
