"""Trains the default word-vector model at set-up from a corpus gensim's wheel ships, and scores it.

Lee background corpus (300 news articles, ~58k tokens), Word2Vec skip-gram
defaults, 50 epochs: a few seconds on 2 cores. One worker thread and a fixed
seed make the vectors the same on every run of the same machine (more workers
interleave updates in an order that changes from run to run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS = "lee_background.cor"
WORDSIM = "wordsim353.tsv"
SIMLEX = "simlex999.txt"
ANALOGY_VOCABULARY = 100_000
ANALOGIES = "questions-words.txt"
PARAMETERS = {"vector_size": 100, "window": 5, "min_count": 2, "epochs": 50, "workers": 1, "seed": 42}


@dataclass(frozen=True)
class Scores:
    vocabulary: int
    wordsim_pearson: float
    wordsim_spearman: float
    wordsim_oov_percent: float
    simlex_spearman: float
    simlex_oov_percent: float
    analogy_accuracy: float
    analogy_questions: int  # questions whose four words are all in the vocabulary

    def lines(self) -> list[str]:
        return [
            f"vocabulary: {self.vocabulary} words",
            f"wordsim353 ({WORDSIM}): Pearson {self.wordsim_pearson:.3f}, Spearman {self.wordsim_spearman:.3f}, "
            f"{self.wordsim_oov_percent:.1f}% of pairs out of vocabulary",
            f"simlex999 ({SIMLEX}): Spearman {self.simlex_spearman:.3f}, "
            f"{self.simlex_oov_percent:.1f}% of pairs out of vocabulary",
            f"analogies ({ANALOGIES}): accuracy {self.analogy_accuracy:.3f} "
            f"on the {self.analogy_questions} questions within the vocabulary",
        ]


def train(target: Path) -> Scores:
    """Train on gensim's bundled Lee corpus, save KeyedVectors to ``target`` and score them."""
    from gensim.models import Word2Vec
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    with open(datapath(CORPUS), encoding="utf-8") as corpus:
        sentences = [simple_preprocess(line) for line in corpus]
    model = Word2Vec(sentences, **PARAMETERS)
    target.parent.mkdir(parents=True, exist_ok=True)
    model.wv.save(str(target))
    return evaluate(model.wv)


def evaluate(kv: Any) -> Scores:
    """Scores of gensim KeyedVectors ``kv`` on the word-pair and analogy files gensim ships."""
    from gensim.test.utils import datapath

    pearson, spearman, oov = kv.evaluate_word_pairs(datapath(WORDSIM))
    _, simlex, simlex_oov = kv.evaluate_word_pairs(datapath(SIMLEX))
    # Only the ANALOGY_VOCABULARY most frequent words answer (and ask) a question: each question
    # scans them all, and gensim's default of 300,000 takes most of an hour on a loaded 2-core machine.
    accuracy, sections = kv.evaluate_word_analogies(datapath(ANALOGIES), restrict_vocab=ANALOGY_VOCABULARY)
    total = next(s for s in sections if s["section"] == "Total accuracy")
    return Scores(
        vocabulary=len(kv),
        wordsim_pearson=float(pearson.statistic),
        wordsim_spearman=float(spearman.statistic),
        wordsim_oov_percent=float(oov),
        simlex_spearman=float(simlex.statistic),
        simlex_oov_percent=float(simlex_oov),
        analogy_accuracy=float(accuracy),
        analogy_questions=len(total["correct"]) + len(total["incorrect"]),
    )
