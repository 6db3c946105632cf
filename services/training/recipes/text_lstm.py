"""Embedding + LSTM text classifier (JSONL records {"text", "label"} or a CSV
with a text column), served by nlp ClassifyText, and AnalyzeSentiment when
its labels are sentiment labels (negative/positive).

Words are ids of shared.word_vocabulary (the format nlp's Keras text runtime
reads), built from the training texts only.
"""

from __future__ import annotations

import numpy as np

from lumen.training.v1 import training_pb2
from services.training.recipes import data, keras_fit
from services.training.recipes.base import (
    Hyper,
    Recipe,
    TrainContext,
    TrainOutput,
    adam_learning_rate,
    batch_size,
    dropout,
    epochs,
    heldout_metrics,
)
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
    binary = len(classes) == 2

    def build() -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input(shape=(max_length,), dtype="int32"),
                keras.layers.Embedding(len(vocabulary), ctx.int("embedding_dim"), mask_zero=True),
                keras.layers.LSTM(ctx.int("lstm_units")),
                keras.layers.Dropout(ctx.hyper("dropout")),
                keras.layers.Dense(1, activation="sigmoid") if binary else keras.layers.Dense(len(classes), "softmax"),
            ]
        )
        loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
        keras_fit.compile_classifier(model, ctx, loss)
        return model

    model = keras_fit.fit(
        ctx, build, ids[train_idx], y[train_idx], ctx.int("epochs"), ctx.int("batch_size"), (ids[test_idx], y[test_idx])
    )
    out = np.asarray(model(ids[test_idx], training=False))
    predicted = (out[:, 0] >= 0.5).astype(np.int64) if binary else np.argmax(out, axis=1)
    model.save(ctx.out_dir / "model.keras")
    vocabulary.save(ctx.out_dir / "vocabulary.json")
    return TrainOutput(
        framework="keras",
        parameters={"file": "model.keras", "labels": classes, "max_length": max_length},
        metrics=heldout_metrics(predicted, y[test_idx], len(train_idx)),
    )


RECIPE = Recipe(
    name="text-lstm",
    description="Embedding + LSTM text classifier on labelled texts; serves ClassifyText (and AnalyzeSentiment).",
    formats=(training_pb2.DATASET_FORMAT_JSONL, training_pb2.DATASET_FORMAT_CSV),
    service="nlp",
    task="text-classification",
    hyperparameters=(
        epochs(10, 500, "texts"),
        Hyper("max_words", 4000, 10, 200000, "Vocabulary size (most frequent training words)."),
        Hyper("max_length", 40, 2, 1000, "Words read per text (longer ones keep their last words)."),
        Hyper("embedding_dim", 32, 2, 1024, "Width of the word embeddings."),
        Hyper("lstm_units", 32, 2, 1024, "Units of the LSTM."),
        batch_size(16, "Texts"),
        adam_learning_rate(0.001),
        dropout(0.3, "after the LSTM"),
    ),
    train=train,
)
