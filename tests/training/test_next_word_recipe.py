"""The next-word recipe in this process: what its examples are, and a corpus it cannot use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lumen.training.v1 import training_pb2 as pb
from services.training.recipes import RECIPES
from services.training.recipes.base import TrainContext, TrainingFailed
from shared import next_words


def test_examples_are_the_words_before_each_position_and_the_word_there() -> None:
    vocabulary = next_words.build_vocabulary([["a", "b", "c"], ["a", "d"]], 10, 2)
    ids = {w: vocabulary.index[w] for w in "abcd"}
    x, y = next_words.examples([next_words.ids(vocabulary, ["a", "b", "c"])], 2)
    a, b, c = ids["a"], ids["b"], ids["c"]
    np.testing.assert_array_equal(x, [[0, a], [a, b], [b, c]])  # padded in front, the last 2 words
    np.testing.assert_array_equal(y, [b, c, next_words.EOS_ID])  # the end of the document is <eos>
    assert next_words.prompt_ids(vocabulary, "A, zebra!") == [a, next_words.OOV_ID]


def test_a_corpus_of_one_document_fails_the_job(tmp_path: Path) -> None:
    corpus = tmp_path / "one.txt"
    corpus.write_text("only one line of words here\n")
    recipe = RECIPES["next-word"]
    ctx = TrainContext(corpus, pb.DATASET_FORMAT_TEXT, "", recipe.effective({}), 0.2, 1, tmp_path, tmp_path)
    with pytest.raises(TrainingFailed, match="need 2 or more"):
        recipe.train(ctx)
