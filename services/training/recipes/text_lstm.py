"""Embedding + LSTM text classifier (JSONL records {"text", "label"} or a CSV
with a text column), served by nlp ClassifyText, and AnalyzeSentiment when
its labels are sentiment labels (negative/positive).

Words are ids of shared.word_vocabulary (the format nlp's Keras text runtime
reads), built from the training texts only.
"""

from __future__ import annotations

from typing import Any

from lumen.training.v1 import training_pb2
from services.training.recipes import data, hypers, keras_fit
from services.training.recipes.base import Hyper, Recipe, TrainContext, TrainOutput
from shared.word_vocabulary import WordVocabulary


def train(ctx: TrainContext) -> TrainOutput:
    import keras

    texts, labels = data.read_labelled_texts(ctx.dataset, ctx.format, ctx.label_column)
    classes, y = data.class_ids(labels)
    train_idx, test_idx = data.split(labels, ctx.validation_split, ctx.seed)
    max_length = ctx.int("max_length")
    vocabulary = WordVocabulary.build([texts[i] for i in train_idx], ctx.int("max_words"), max_length)
    ids, _ = vocabulary.encode(texts)
    keras_fit.seed_everything(ctx.seed)

    def body() -> list[Any]:
        return [
            keras.Input(shape=(max_length,), dtype="int32"),
            keras.layers.Embedding(len(vocabulary), ctx.int("embedding_dim"), mask_zero=True),
            keras.layers.LSTM(ctx.int("lstm_units")),
        ]

    split = (train_idx, test_idx)
    model, predicted = keras_fit.fit_classifier(ctx, body, len(classes), ids, y, split, sigmoid_if_binary=True)
    model.save(ctx.out_dir / "model.keras")
    vocabulary.save(ctx.out_dir / "vocabulary.json")
    return TrainOutput(
        framework="keras",
        parameters={"file": "model.keras", "labels": classes, "max_length": max_length},
        metrics=data.heldout_metrics(predicted, y[test_idx], len(train_idx)),
    )


RECIPE = Recipe(
    name="text-lstm",
    description="Embedding + LSTM text classifier on labelled texts; serves ClassifyText (and AnalyzeSentiment).",
    formats=(training_pb2.DATASET_FORMAT_JSONL, training_pb2.DATASET_FORMAT_CSV),
    service="nlp",
    task="text-classification",
    hyperparameters=(
        hypers.epochs(10, 500, "texts"),
        Hyper("max_words", 4000, 10, 200000, "Vocabulary size (most frequent training words)."),
        Hyper("max_length", 40, 2, 1000, "Words read per text (longer ones keep their last words)."),
        Hyper("embedding_dim", 32, 2, 1024, "Width of the word embeddings."),
        Hyper("lstm_units", 32, 2, 1024, "Units of the LSTM."),
        hypers.batch_size(16, "Texts"),
        hypers.adam_learning_rate(0.001),
        hypers.dropout(0.3, "after the LSTM"),
    ),
    train=train,
)
