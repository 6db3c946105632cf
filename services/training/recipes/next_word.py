"""Embedding + LSTM next-word model on a plain-text corpus (DATASET_FORMAT_TEXT,
one document a line), served by nlp Generate / GenerateStream (the nlp
runtime runtime_keras_next_word, on its generation scheduler).

Words, vocabulary and windows are shared.next_words': every position of a
training document is one example (the ``context`` words before it -> the word
there, or <eos> after the last). The split is by document (``validation_split``
of the lines, seeded). Held-out metrics, over the held-out positions whose
word is in the vocabulary: next-word accuracy (top-1 among the words serving
may choose, i.e. not padding or <oov>) and perplexity (exp of the mean
cross-entropy over the whole vocabulary). The model outputs logits.
"""

from __future__ import annotations

import math

import numpy as np

from lumen.training.v1 import training_pb2
from services.training.recipes import data, hypers, keras_fit
from services.training.recipes.base import Hyper, Recipe, TrainContext, TrainingFailed, TrainOutput
from shared import next_words
from shared.word_vocabulary import words

EVAL_BATCH = 1024


def read_documents(ctx: TrainContext) -> list[list[str]]:
    documents = [w for w in (words(line) for line in data.read_lines(ctx.dataset)) if w]
    if len(documents) < 2:
        raise TrainingFailed(f"the corpus has {len(documents)} line(s) with words; need 2 or more (one is held out)")
    return documents


def heldout_metrics(model: object, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy and perplexity of ``model`` (a callable giving logits) over positions whose word is known."""
    known = y != next_words.OOV_ID
    x, y = x[known], y[known]
    correct, nll = 0, 0.0
    for start in range(0, len(y), EVAL_BATCH):
        logits = np.asarray(model(x[start : start + EVAL_BATCH], training=False), dtype=np.float64)  # type: ignore[operator]
        target = y[start : start + EVAL_BATCH]
        top = np.max(logits, axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.sum(np.exp(logits - top), axis=1))
        nll += float(np.sum(log_z - logits[np.arange(len(target)), target]))
        correct += int(np.sum(np.argmax(next_words.mask_never_chosen(logits), axis=1) == target))
    n = max(1, len(y))
    return {
        "heldout_accuracy": correct / n,
        "heldout_perplexity": math.exp(nll / n),
        "heldout_positions": float(len(y)),
    }


def train(ctx: TrainContext) -> TrainOutput:
    documents = read_documents(ctx)  # before TensorFlow loads: a corpus it cannot use fails at once
    import keras

    train_idx, test_idx = data.split([""] * len(documents), ctx.validation_split, ctx.seed)
    context = ctx.int("context")
    vocabulary = next_words.build_vocabulary([documents[i] for i in train_idx], ctx.int("max_words"), context)
    encoded = [next_words.ids(vocabulary, d) for d in documents]
    x_train, y_train = next_words.examples([encoded[i] for i in train_idx], context)
    x_test, y_test = next_words.examples([encoded[i] for i in test_idx], context)
    keras_fit.seed_everything(ctx.seed)

    def build() -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input(shape=(context,), dtype="int32"),
                keras.layers.Embedding(len(vocabulary), ctx.int("embedding_dim"), mask_zero=True),
                keras.layers.LSTM(ctx.int("lstm_units")),
                keras.layers.Dropout(ctx.hyper("dropout")),
                keras.layers.Dense(len(vocabulary)),  # logits
            ]
        )
        keras_fit.compile_classifier(model, ctx, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    model = keras_fit.fit(ctx, build, x_train, y_train, ctx.int("epochs"), ctx.int("batch_size"), (x_test, y_test))
    model.save(ctx.out_dir / "model.keras")
    vocabulary.save(ctx.out_dir / "vocabulary.json")
    return TrainOutput(
        framework="keras-next-word",
        # Files relative to the model's path (its version's folder), as nlp's Keras runtimes read them.
        parameters={"file": "model.keras", "vocabulary": "vocabulary.json", "context": context},
        metrics={
            **heldout_metrics(model, x_test, y_test),
            "train_positions": float(len(y_train)),
            "vocabulary": float(len(vocabulary)),
        },
    )


RECIPE = Recipe(
    name="next-word",
    description="Embedding + LSTM next-word model on a plain-text corpus; serves Generate and GenerateStream.",
    formats=(training_pb2.DATASET_FORMAT_TEXT,),
    service="nlp",
    task="text-generation",
    hyperparameters=(
        hypers.epochs(10, 500, "positions"),
        Hyper("max_words", 5000, 10, 200000, "Vocabulary size with <pad>, <oov> and <eos> (most frequent words)."),
        Hyper("context", 10, 1, 200, "Words before a position that the model reads."),
        Hyper("embedding_dim", 64, 2, 1024, "Width of the word embeddings."),
        Hyper("lstm_units", 128, 2, 1024, "Units of the LSTM."),
        hypers.batch_size(64, "Positions"),
        hypers.adam_learning_rate(0.003),
        hypers.dropout(0.2, "after the LSTM"),
    ),
    train=train,
    classes=False,
)
