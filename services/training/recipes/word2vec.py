"""gensim Word2Vec on a plain-text corpus (DATASET_FORMAT_TEXT, one document a
line), served by embeddings' WordEmbeddingService as gensim KeyedVectors.

Text is tokenised with gensim's simple_preprocess (lower-cased), so model.json
says ``lowercase``. Training runs one epoch per ``train`` call with the learning
rate of that slice of the linear schedule; after each epoch the whole model
(vectors, output weights, random state) is saved in the work directory, so a
restarted job continues at the next epoch. ``workers`` 1 with the job's seed
gives the same vectors on every run; more workers interleave updates in an
order that changes from run to run.
"""

from __future__ import annotations

import json
import time

from lumen.training.v1 import training_pb2
from services.training.recipes import data
from services.training.recipes.base import Hyper, Recipe, TrainContext, TrainingFailed, TrainOutput
from services.training.recipes.progress import event

WORDSIM = "wordsim353.tsv"  # word pairs gensim's wheel ships: a rough score of the vectors


def train(ctx: TrainContext) -> TrainOutput:
    from gensim.models import Word2Vec
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    sentences = [words for words in map(simple_preprocess, data.read_lines(ctx.dataset)) if words]
    epochs, alpha, min_alpha = ctx.int("epochs"), ctx.hyper("learning_rate"), ctx.hyper("min_learning_rate")
    checkpoint, state = ctx.work_dir / "checkpoint.model", ctx.work_dir / "checkpoint.json"
    initial = 0
    if checkpoint.is_file() and state.is_file():
        initial = int(json.loads(state.read_text())["epoch"])
        model = Word2Vec.load(str(checkpoint))
    else:
        model = Word2Vec(
            vector_size=ctx.int("vector_size"),
            window=ctx.int("window"),
            min_count=ctx.int("min_count"),
            sg=ctx.int("skip_gram"),
            negative=ctx.int("negative"),
            alpha=alpha,
            min_alpha=min_alpha,
            workers=ctx.int("workers"),
            seed=ctx.seed,
        )
        model.build_vocab(sentences)
    if len(model.wv) < 2:
        raise TrainingFailed(f"{len(model.wv)} word(s) occur min_count={ctx.int('min_count')} times; need 2 or more")
    ctx.report(event(initial, epochs, 0, 1, initial, {}, 0.0))
    started = time.monotonic()
    for epoch in range(initial, epochs):
        model.train(
            sentences,
            total_examples=model.corpus_count,
            epochs=1,
            start_alpha=alpha - (alpha - min_alpha) * epoch / epochs,
            end_alpha=alpha - (alpha - min_alpha) * (epoch + 1) / epochs,
            compute_loss=True,
        )
        loss = float(model.get_latest_training_loss())  # summed over the epoch's words
        model.save(str(checkpoint))  # then the counter: a crash between the two redoes one epoch
        state.write_text(json.dumps({"epoch": epoch + 1}))
        eta = (time.monotonic() - started) / (epoch + 1 - initial) * (epochs - epoch - 1)
        ctx.report(event(epoch + 1, epochs, 1, 1, initial, {"loss": loss}, eta))
    model.wv.save(str(ctx.out_dir / "vectors.kv"))
    pearson, spearman, oov = model.wv.evaluate_word_pairs(datapath(WORDSIM))
    return TrainOutput(
        framework="gensim-keyedvectors",
        parameters={"format": "keyedvectors", "lowercase": True},
        metrics={
            "vocabulary": float(len(model.wv)),
            "sentences": float(len(sentences)),
            "wordsim353_pearson": float(pearson.statistic),
            "wordsim353_spearman": float(spearman.statistic),
            "wordsim353_oov_percent": float(oov),
        },
        path="vectors.kv",
    )


RECIPE = Recipe(
    name="word2vec",
    description="gensim Word2Vec word vectors on a plain-text corpus; serves WordEmbeddingService.",
    formats=(training_pb2.DATASET_FORMAT_TEXT,),
    service="embeddings",
    task="word-embedding",
    hyperparameters=(
        Hyper("epochs", 5, 1, 1000, "Passes over the corpus."),
        Hyper("vector_size", 100, 2, 1000, "Dimension of the word vectors."),
        Hyper("window", 5, 1, 50, "Words either side that count as context."),
        Hyper("min_count", 2, 1, 10000, "Words seen fewer times are left out of the vocabulary."),
        Hyper("skip_gram", 0, 0, 1, "1: skip-gram; 0: CBOW."),
        Hyper("negative", 5, 0, 50, "Negative samples per word (0: none)."),
        Hyper("workers", 1, 1, 16, "Training threads; 1 makes the vectors reproducible from the seed."),
        Hyper("learning_rate", 0.025, 1e-5, 1.0, "Starting learning rate (alpha).", integer=False),
        Hyper("min_learning_rate", 0.0001, 0.0, 1.0, "Learning rate at the end of the last epoch.", integer=False),
    ),
    train=train,
    classes=False,
)
