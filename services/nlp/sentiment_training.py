"""Sentiment classifiers trained at set-up on the 200 labelled sentences of
Pang & Lee's movie-review polarity data that gensim's wheel ships
(``gensim/test/test_data/pang_lee_polarity.cor``, 100 negative, 100 positive).

Both models train on the same stratified 160 sentences and are scored on the
other 40, which they never see; that held-out accuracy is what services/nlp/README.md
reports (40 sentences: about +-12 points of uncertainty at 95%). The embedding head also
gets a 5-fold cross-validated accuracy over all 200 sentences, a steadier
figure for the method (not for the shipped weights).

- ``pang-lee-minilm-head``: logistic regression on L2-normalised
  all-MiniLM-L6-v2 sentence embeddings, served by runtime_embedding_head.
- ``pang-lee-lstm``: the seed's recipe, Keras Embedding + LSTM + Dense on word
  ids, served by runtime_keras_text. With 160 training sentences it has far
  too little data to learn much; it is kept as the Keras example, and its
  accuracy is reported as measured.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.word_vocabulary import WordVocabulary

LABELS = ["negative", "positive"]
HELD_OUT, SEED = 40, 0
LSTM_MAX_LENGTH, LSTM_MAX_WORDS = 40, 4000


@dataclass(frozen=True)
class Split:
    train_texts: list[str]
    train_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray


def corpus_path() -> Path:
    import gensim

    return Path(gensim.__file__).parent / "test" / "test_data" / "pang_lee_polarity.cor"


def load_corpus() -> tuple[list[str], np.ndarray]:
    """Texts and labels (1 = positive). The file is Windows-1252 (e.g. 0x97 for an em dash)."""
    texts, labels = [], []
    for line in corpus_path().read_bytes().decode("cp1252", errors="replace").splitlines():
        tag, _, text = line.partition(" ")
        if tag in ("__label__pos", "__label__neg") and text.strip():
            texts.append(text.strip())
            labels.append(1 if tag == "__label__pos" else 0)
    return texts, np.asarray(labels, dtype=np.int64)


def split(texts: list[str], labels: np.ndarray) -> Split:
    """Stratified: HELD_OUT/2 sentences of each class held out, chosen with a fixed seed."""
    rng = np.random.default_rng(SEED)
    test: list[int] = []
    for label in (0, 1):
        test += rng.permutation(np.flatnonzero(labels == label))[: HELD_OUT // 2].tolist()
    held = set(test)
    train = [i for i in range(len(texts)) if i not in held]
    return Split([texts[i] for i in train], labels[train], [texts[i] for i in test], labels[test])


def write_metrics(directory: Path, metrics: dict[str, object]) -> None:
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def train_head(directory: Path, encoder_path: Path, data: Split, all_texts: list[str], all_labels: np.ndarray) -> dict:
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from services.nlp.runtime_embedding_head import save_head

    start = time.perf_counter()
    encoder = SentenceTransformer(str(encoder_path), device="cpu", local_files_only=True)
    train = encoder.encode(data.train_texts, normalize_embeddings=True)
    test = encoder.encode(data.test_texts, normalize_embeddings=True)
    classifier = LogisticRegression(C=1.0, max_iter=2000).fit(train, data.train_labels)
    accuracy = float(classifier.score(test, data.test_labels))
    everything = encoder.encode(all_texts, normalize_embeddings=True)
    folds = StratifiedKFold(5, shuffle=True, random_state=SEED)
    cv = cross_val_score(LogisticRegression(C=1.0, max_iter=2000), everything, all_labels, cv=folds)
    # Binary logistic regression as a two-class softmax: softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)].
    weights = np.stack([np.zeros_like(classifier.coef_[0]), classifier.coef_[0]], axis=1)
    save_head(directory, weights, np.array([0.0, classifier.intercept_[0]]), LABELS)
    metrics = {
        "heldout_accuracy": round(accuracy, 4),
        "heldout_size": len(data.test_texts),
        "train_size": len(data.train_texts),
        "cv5_accuracy_mean": round(float(cv.mean()), 4),
        "cv5_accuracy_std": round(float(cv.std()), 4),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    write_metrics(directory, metrics)
    return metrics


def train_lstm(directory: Path, data: Split, epochs: int = 30) -> dict:
    import keras

    start = time.perf_counter()
    keras.utils.set_random_seed(SEED)
    vocabulary = WordVocabulary.build(data.train_texts, LSTM_MAX_WORDS, LSTM_MAX_LENGTH)
    train_ids, _ = vocabulary.encode(data.train_texts)
    test_ids, _ = vocabulary.encode(data.test_texts)
    model = keras.Sequential(
        [
            keras.Input(shape=(LSTM_MAX_LENGTH,), dtype="int32"),
            keras.layers.Embedding(len(vocabulary), 32, mask_zero=True),
            keras.layers.LSTM(32),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(train_ids, data.train_labels, epochs=epochs, batch_size=16, verbose=0, shuffle=True)
    _, accuracy = model.evaluate(test_ids, data.test_labels, verbose=0)
    model.save(directory / "model.keras")
    vocabulary.save(directory / "vocabulary.json")
    metrics = {
        "heldout_accuracy": round(float(accuracy), 4),
        "heldout_size": len(data.test_texts),
        "train_size": len(data.train_texts),
        "epochs": epochs,
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    write_metrics(directory, metrics)
    return metrics
