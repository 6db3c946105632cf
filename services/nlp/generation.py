"""Generation data plane: Generate, GenerateStream and TransformText.

Free generation goes to any ScheduledGenerator (a causal LM, a trained Keras
next-word model) through its GenerationScheduler (token-interleaved, see
generation_scheduler). Text-to-text goes to an encoder-decoder model in
one padded batch, or, by default, to the instruct model with a prompt
template per task (transform_prompts), one scheduled generation per text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from services.nlp import tasks
from services.nlp.generation_params import Decoding, DecodingRequest, check_chat, check_prompt, resolve
from services.nlp.generation_scheduler import Event, Failed, Finished, GenerationJob, GenerationResult
from services.nlp.interfaces import ScheduledGenerator
from services.nlp.runtime_seq2seq import Seq2SeqModel, Transformed
from services.nlp.settings import NlpSettings
from services.nlp.transform_prompts import REWRITE, TRANSLATE, instruct_messages, language_name
from shared.errors import FailedPrecondition, InvalidArgument, LumenError
from shared.model import GenerativeModel
from shared.repository import Entry, Lease, ModelRepository
from shared.results import Checked, Result
from shared.siblings import gather_or_cancel
from shared.validation import check_count, check_each_text

MAX_TRANSFORM_TEXTS, MAX_INSTRUCTION_CHARS = 16, 2000
Messages = Sequence[tuple[str, str]]  # (role, content)


@dataclass(frozen=True)
class Prepared:
    """A checked generation, holding its model: use it as ``with prepared:`` so the
    model is released when the call ends (unload waits for that)."""

    lease: Lease[ScheduledGenerator]
    job: GenerationJob

    @property
    def entry(self) -> Entry:
        return self.lease.entry

    @property
    def model(self) -> ScheduledGenerator:
        return self.lease.model

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.lease.release()


@dataclass(frozen=True)
class TransformInput:
    """A checked TransformText request, as both text-to-text paths read it."""

    task: str
    texts: list[str]
    params: DecodingRequest
    instruction: str = ""
    source: str = ""  # language codes, "" when not given
    target: str = ""


@dataclass(frozen=True)
class TransformAnswer:
    results: list[Result[Transformed]]
    input_tokens: int
    output_tokens: int
    entry: Entry


class Generation:
    def __init__(self, repository: ModelRepository, settings: NlpSettings) -> None:
        self.repository = repository
        self.settings = settings

    def _decoding(
        self, model: ScheduledGenerator | Seq2SeqModel, params: DecodingRequest, limit: int | None = None
    ) -> Decoding:
        defaults = model.defaults if isinstance(model, ScheduledGenerator) else {}
        most = self.settings.max_new_tokens if limit is None else limit
        return resolve(params, defaults, most, self.settings.default_new_tokens)

    def _generator(self, name: str, version: str) -> Lease[ScheduledGenerator]:
        return self.repository.resolve(
            name,
            version,
            tasks.TEXT_GENERATION,
            ScheduledGenerator,
            default=self.settings.default_generator,
            capability="free generation",
        )

    async def prepare(
        self, name: str, version: str, prompt: str | None, chat: Messages | None, params: DecodingRequest
    ) -> Prepared:
        """Checks everything and tokenizes the input; nothing runs yet. The caller holds the
        result (``with prepared:``) for as long as the generation runs."""
        if (prompt is None) == (chat is None):
            raise InvalidArgument("input", "set exactly one of prompt and chat")
        lease = self._generator(name, version)
        try:
            return await self._prepare(lease, prompt, chat, params)
        except BaseException:
            lease.release()
            raise

    async def _prepare(
        self, lease: Lease[ScheduledGenerator], prompt: str | None, chat: Messages | None, params: DecodingRequest
    ) -> Prepared:
        model = lease.model
        decoding = self._decoding(model, params)
        if prompt is not None:
            check_prompt(prompt, self.settings.max_text_chars)
            ids, field = await asyncio.to_thread(model.encode_prompt, prompt), "prompt"
        else:
            assert chat is not None
            check_chat(chat, self.settings.max_text_chars)
            ids, field = await self._encode_chat(model, chat), "chat"
        self._check_prompt_tokens(model.prefilled(len(ids)), field)
        self._check_room(model, len(ids), field)
        return Prepared(lease, model.job(ids, decoding.max_new_tokens, decoding.sampling, decoding.stop))

    async def _encode_chat(self, model: ScheduledGenerator, chat: Messages) -> list[int]:
        if not model.has_chat_template:
            raise FailedPrecondition(f"chat: model {model.config.name!r} has no chat template; send a prompt")
        messages = [{"role": role, "content": content} for role, content in chat]
        return await asyncio.to_thread(model.encode_chat, messages)

    def _check_prompt_tokens(self, tokens: int, field: str, what: str = "is") -> None:
        most = self.settings.max_prompt_tokens
        if tokens > most:
            raise InvalidArgument(field, f"{what} {tokens} tokens; one call prefills at most {most}")

    def _share_new_tokens(self, params: DecodingRequest, texts: int) -> int:
        """Tokens each text of a TransformText call may generate: the call shares max_new_tokens,
        so it costs at most what one Generate call at the limit does."""
        most = self.settings.max_new_tokens
        share = max(1, most // max(texts, 1))
        if params.max_new_tokens > share:
            raise InvalidArgument(
                "params.max_new_tokens",
                f"{params.max_new_tokens} tokens for each of {texts} texts exceeds the {most} one call may "
                f"generate; at most {share} here",
            )
        return share

    @staticmethod
    def _check_room(model: ScheduledGenerator, tokens: int, field: str) -> None:
        if model.room(tokens) <= 0:
            raise InvalidArgument(
                field, f"is {tokens} tokens; the model's context holds {model.context_length} with the output"
            )

    async def events(self, prepared: Prepared) -> AsyncIterator[Event]:
        """Text deltas, then Finished; an error in the model is raised. Leaving early cancels generation."""
        # aclosing: when our caller leaves, the scheduler's iterator is closed at
        # once (cancelling the job), not whenever the garbage collector gets to it.
        async with aclosing(prepared.model.scheduler.events(prepared.job)) as events:
            async for event in events:
                if isinstance(event, Failed):
                    raise event.error
                yield event

    async def generate(self, prepared: Prepared) -> GenerationResult:
        async with aclosing(self.events(prepared)) as events:
            async for event in events:
                if isinstance(event, Finished):
                    return event.result
        raise RuntimeError("generation ended without a result")

    # --- text-to-text ----------------------------------------------------------
    async def transform(
        self,
        name: str,
        version: str,
        task: str,
        texts: list[str],
        instruction: str,
        source: str,
        target: str,
        params: DecodingRequest,
    ) -> TransformAnswer:
        if not task:
            raise InvalidArgument("task", "must be SUMMARIZE, TRANSLATE or REWRITE")
        check_count(texts, "texts", MAX_TRANSFORM_TEXTS)
        if len(instruction) > MAX_INSTRUCTION_CHARS:
            raise InvalidArgument("instruction", f"has {len(instruction)} characters; at most {MAX_INSTRUCTION_CHARS}")
        if task == REWRITE and not instruction.strip():
            raise InvalidArgument("instruction", "is required to REWRITE")
        for value, field in ((source, "source_language"), (target, "target_language")):
            if value:
                language_name(value, field)
        if task == TRANSLATE and not target:
            raise InvalidArgument("target_language", "is required to TRANSLATE")
        with self.repository.resolve(
            name,
            version,
            (tasks.TEXT_TO_TEXT, tasks.TEXT_GENERATION),
            GenerativeModel,
            default=self.settings.default_generator,
        ) as lease:
            checked = check_each_text(texts, "texts", self.settings.max_text_chars)
            request = TransformInput(task, texts, params, instruction, source, target)
            model = lease.model
            if isinstance(model, Seq2SeqModel):
                return await self._seq2seq(lease.entry, model, checked, request)
            if not isinstance(model, ScheduledGenerator):
                raise InvalidArgument("model.name", f"{lease.entry.config.name!r} has no text-to-text generation")
            return await self._instructed(lease, model, checked, request)

    async def _instructed(
        self, lease: Lease[GenerativeModel], model: ScheduledGenerator, checked: Checked, request: TransformInput
    ) -> TransformAnswer:
        """Text-to-text by the instruct model: one scheduled generation per text."""
        if not model.has_chat_template:
            raise InvalidArgument("model", f"{model.config.name!r} has no chat template to drive with instructions")
        decoding = self._decoding(model, request.params, self._share_new_tokens(request.params, len(request.texts)))
        errors = dict(checked.errors)
        prompts: dict[int, list[int]] = {}
        r = request
        for i in checked.valid:
            ids = await asyncio.to_thread(
                model.encode_chat, instruct_messages(r.task, r.texts[i], r.instruction, r.source, r.target)
            )
            if model.room(len(ids)) <= 0:
                errors[i] = InvalidArgument(
                    f"texts[{i}]", f"is {len(ids)} tokens with the prompt; too long for the model"
                )
            else:
                prompts[i] = ids
        self._check_prompt_tokens(
            sum(model.prefilled(len(ids)) for ids in prompts.values()), "texts", "are, with their instructions,"
        )
        jobs = {
            i: model.job(ids, decoding.max_new_tokens, decoding.sampling, decoding.stop) for i, ids in prompts.items()
        }
        held = Lease(lease.entry, model)  # typed as the generator it is; released with the call
        with held:
            # One failure cancels the sibling generations (waiting or running) instead of letting them finish.
            done = await gather_or_cancel(self.generate(Prepared(held, job)) for job in jobs.values())
        by_index = dict(zip(jobs, done, strict=True))
        results: list[Result[Transformed]] = [
            Result.failed(errors[i])
            if i in errors
            else Result.of(
                Transformed(
                    by_index[i].text, by_index[i].finish_reason, by_index[i].stop_sequence, by_index[i].output_tokens
                )
            )
            for i in range(len(request.texts))
        ]
        return TransformAnswer(
            results, sum(r.prompt_tokens for r in done), sum(r.output_tokens for r in done), lease.entry
        )

    async def _seq2seq(
        self, entry: Entry, model: Seq2SeqModel, checked: Checked, request: TransformInput
    ) -> TransformAnswer:
        decoding = self._decoding(model, request.params, self._share_new_tokens(request.params, len(request.texts)))
        errors: dict[int, LumenError] = dict(checked.errors)
        inputs: dict[int, list[int]] = {}
        r = request
        for i in checked.valid:
            text = model.render(r.task, r.texts[i], r.instruction, r.source, r.target)
            ids = await asyncio.to_thread(model.encode, text)
            if len(ids) > model.context_length:
                errors[i] = InvalidArgument(
                    f"texts[{i}]", f"is {len(ids)} tokens; the model reads at most {model.context_length}"
                )
            else:
                inputs[i] = ids
        outputs: list[Transformed] = []
        if inputs:
            outputs = await asyncio.to_thread(
                model.transform, list(inputs.values()), decoding.max_new_tokens, decoding.sampling, decoding.stop
            )
        by_index = dict(zip(inputs, outputs, strict=True))
        results: list[Result[Transformed]] = [
            Result.failed(errors[i]) if i in errors else Result.of(by_index[i]) for i in range(len(request.texts))
        ]
        return TransformAnswer(
            results, sum(len(ids) for ids in inputs.values()), sum(o.output_tokens for o in outputs), entry
        )
