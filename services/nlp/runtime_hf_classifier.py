"""Hugging Face sequence classification (transformers on PyTorch): any
``AutoModelForSequenceClassification`` directory, e.g. a fine-tuned BERT.

Labels come from the model's ``id2label``. Softmax over the labels, or an
independent sigmoid per label when the config's ``problem_type`` is
``multi_label_classification``. Texts longer than the model's window (or
``parameters.max_length`` tokens, when set) are truncated to it (as nlp.proto
states).
"""

from __future__ import annotations

from collections.abc import Sequence

from services.nlp.interfaces import ClassScores, TextClassifierModel, TokenizerModel, context_length_of

FRAMEWORK = "transformers-sequence-classification"


class HfSequenceClassifier(TextClassifierModel, TokenizerModel):
    def load(self) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = str(self.config.path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
        self.model.to(self.device).eval()
        self.context_length = context_length_of(self.tokenizer, self.model.config)
        # A model fine-tuned on shorter texts (the training service's minilm-classifier) reads what it was trained on.
        limit = int(self.config.parameters.get("max_length", 0))
        if limit > 0:
            self.context_length = min(self.context_length, limit)
        id2label = self.model.config.id2label
        self.labels = [str(id2label[i]) for i in range(len(id2label))]
        self.multi_label = self.model.config.problem_type == "multi_label_classification"
        self._torch = torch

    def warm(self) -> None:
        self.predict(["warm-up sentence"])

    def predict(self, batch: list[str]) -> Sequence[ClassScores]:
        torch = self._torch
        with self.tokenizer_lock:
            features = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.context_length, return_tensors="pt"
            )
        features = {k: v.to(self.device) for k, v in features.items()}
        with torch.inference_mode():
            logits = self.model(**features).logits.float()
        probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        tokens = features["attention_mask"].sum(dim=1).tolist()
        return [ClassScores(p, int(t)) for p, t in zip(probs.cpu().numpy(), tokens, strict=True)]

    def unload(self) -> None:
        del self.model

    def properties(self) -> dict[str, str]:
        return {"labels": ",".join(self.labels), "max_seq_length": str(self.context_length)}
