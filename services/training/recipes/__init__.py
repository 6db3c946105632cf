"""Every recipe by name. Importing them is cheap: frameworks load inside ``train``."""

from __future__ import annotations

from services.training.recipes import cnn_image, next_word, tabular_dense, text_lstm, word2vec
from services.training.recipes.base import Recipe

RECIPES: dict[str, Recipe] = {
    r.name: r for r in (tabular_dense.RECIPE, text_lstm.RECIPE, word2vec.RECIPE, cnn_image.RECIPE, next_word.RECIPE)
}
