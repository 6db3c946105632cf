"""Tokenizer data plane: Tokenize and CountTokens with any nlp model's
Hugging Face tokenizer (fast tokenizers give code-point offsets)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from services.nlp import tasks
from services.nlp.generation_params import check_chat
from services.nlp.interfaces import ScheduledGenerator, TokenizerModel
from services.nlp.settings import NlpSettings
from shared.errors import FailedPrecondition, InvalidArgument
from shared.repository import Entry, Lease, ModelRepository
from shared.results import Result
from shared.validation import check_count, check_each_text, check_total_chars

MAX_TOKENIZE, MAX_COUNT = 64, 256


@dataclass(frozen=True)
class Piece:
    id: int
    piece: str
    start: int
    end: int


@dataclass(frozen=True)
class Counted:
    counts: list[Result[int]]
    context_length: int
    entry: Entry


def tokenize(model: TokenizerModel, texts: list[str], special: bool) -> list[list[Piece]]:
    with model.tokenizer_lock:
        encoded = model.tokenizer(texts, add_special_tokens=special, return_offsets_mapping=True)
        out = []
        for ids, offsets in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
            pieces = model.tokenizer.convert_ids_to_tokens(ids)
            out.append(_pieces(ids, pieces, offsets, set(model.tokenizer.all_special_ids)))
    return out


def _pieces(
    ids: Sequence[int], pieces: Sequence[str], offsets: Sequence[tuple[int, int]], special: set[int]
) -> list[Piece]:
    result, last_end = [], 0
    for token_id, piece, (start, end) in zip(ids, pieces, offsets, strict=True):
        if token_id in special and start == end:
            start = end = last_end  # special tokens cover no text: an empty span where they sit
        result.append(Piece(int(token_id), str(piece), int(start), int(end)))
        last_end = end
    return result


def count(model: TokenizerModel, texts: list[str], special: bool) -> list[int]:
    with model.tokenizer_lock:
        return [len(ids) for ids in model.tokenizer(texts, add_special_tokens=special)["input_ids"]]


class Tokens:
    def __init__(self, repository: ModelRepository, settings: NlpSettings) -> None:
        self.repository = repository
        self.settings = settings

    def _model(self, name: str, version: str) -> Lease[TokenizerModel]:
        lease = self.repository.resolve(
            name,
            version,
            tasks.WITH_TOKENIZER,
            TokenizerModel,
            default=self.settings.default_generator,
            capability="tokenizer",
        )
        if not getattr(lease.model.tokenizer, "is_fast", False):
            lease.release()
            raise InvalidArgument("model.name", f"{lease.entry.config.name!r} has no fast tokenizer to give offsets")
        return lease

    async def tokenize(
        self, texts: list[str], name: str, version: str, special: bool
    ) -> tuple[list[Result[list[Piece]]], Entry]:
        check_count(texts, "texts", MAX_TOKENIZE)
        check_total_chars(texts, "texts", self.settings.max_tokenize_chars)
        with self._model(name, version) as lease:
            checked = check_each_text(texts, "texts", self.settings.max_text_chars, allow_empty=True)
            valid = checked.pick(texts)
            results = await asyncio.to_thread(tokenize, lease.model, valid, special) if valid else []
            return checked.merge(len(texts), results), lease.entry

    async def count(
        self, texts: list[str], chat: Sequence[tuple[str, str]] | None, name: str, version: str, special: bool
    ) -> Counted:
        if (not texts) == (chat is None):
            raise InvalidArgument("texts", "give exactly one of texts and chat")
        with self._model(name, version) as lease:
            entry, model = lease.entry, lease.model
            if chat is not None:
                check_chat(chat, self.settings.max_text_chars)
                if not isinstance(model, ScheduledGenerator) or not model.has_chat_template:
                    raise FailedPrecondition(f"chat: model {entry.config.name!r} has no chat template")
                messages = [{"role": role, "content": content} for role, content in chat]
                ids = await asyncio.to_thread(model.encode_chat, messages)
                return Counted([Result.of(len(ids))], model.context_length, entry)
            check_count(texts, "texts", MAX_COUNT)
            check_total_chars(texts, "texts", self.settings.max_call_chars)
            checked = check_each_text(texts, "texts", self.settings.max_text_chars, allow_empty=True)
            valid = checked.pick(texts)
            counts = await asyncio.to_thread(count, model, valid, special) if valid else []
            return Counted(checked.merge(len(texts), counts), model.context_length, entry)
