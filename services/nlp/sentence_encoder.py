"""A sentence-transformers model inside the nlp service (zero-shot labels and
the sentiment head read its embeddings). The nlp service imports no other
service, so this is its own small wrapper."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from services.nlp.interfaces import TokenizerModel
from shared.model import BatchedModel


class SentenceEncoderModel(TokenizerModel, BatchedModel):
    """Base of runtimes built on a sentence-transformers directory."""

    def load_encoder(self, path: Path) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self._torch = torch
        self.encoder = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        self.encoder.eval()
        self.tokenizer = self.encoder.tokenizer
        self.context_length = int(self.encoder.max_seq_length)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, list[int]]:
        """L2-normalised float32 embeddings (n, d) and each text's token count after truncation."""
        from sentence_transformers.util import batch_to_device

        prepare = getattr(self.encoder, "preprocess", None) or self.encoder.tokenize
        with self.tokenizer_lock:
            features = prepare(texts)
        features = batch_to_device(features, self.encoder.device)
        with self._torch.inference_mode():
            out = self.encoder(features)
        vectors = self._torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=-1)
        tokens = features["attention_mask"].sum(dim=1).tolist()
        return vectors.cpu().numpy(), [int(t) for t in tokens]

    def unload(self) -> None:
        del self.encoder
