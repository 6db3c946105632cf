"""Checks of decoding settings and chat input, shared by generation and
text-to-text. Every violation names its field as nlp.proto states."""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.nlp.sampling import SamplingParams
from shared.errors import InvalidArgument

MAX_STOPS, MAX_STOP_CHARS, MAX_TOP_K, MAX_TEMPERATURE = 8, 256, 1000, 2.0
MAX_MESSAGES = 256
SYSTEM, USER, ASSISTANT = "system", "user", "assistant"


@dataclass(frozen=True)
class DecodingRequest:
    """GenerationParams as the caller sent them; None where a field was unset."""

    max_new_tokens: int = 0
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Decoding:
    max_new_tokens: int
    sampling: SamplingParams
    stop: tuple[str, ...]


def resolve(request: DecodingRequest, defaults: Mapping[str, float], limit: int, default_new_tokens: int) -> Decoding:
    """Validated decoding settings, unset fields from the model's generation config or nlp.proto's defaults."""
    if request.max_new_tokens > limit:
        raise InvalidArgument("params.max_new_tokens", f"must be between 1 and {limit}, got {request.max_new_tokens}")
    temperature = _pick(request.temperature, defaults.get("temperature"), 1.0)
    if not math.isfinite(temperature) or not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise InvalidArgument("params.temperature", f"must be in [0, {MAX_TEMPERATURE:g}], got {temperature}")
    top_p = _pick(request.top_p, defaults.get("top_p"), 1.0)
    if math.isnan(top_p) or not 0.0 < top_p <= 1.0:
        raise InvalidArgument("params.top_p", f"must be in (0, 1], got {top_p}")
    top_k = int(_pick(request.top_k, defaults.get("top_k"), 0))
    if not 0 <= top_k <= MAX_TOP_K:
        raise InvalidArgument("params.top_k", f"must be between 0 and {MAX_TOP_K}, got {top_k}")
    if len(request.stop) > MAX_STOPS:
        raise InvalidArgument("params.stop", f"holds {len(request.stop)} sequences; at most {MAX_STOPS}")
    for i, stop in enumerate(request.stop):
        if not 1 <= len(stop) <= MAX_STOP_CHARS:
            raise InvalidArgument(f"params.stop[{i}]", f"must be 1 to {MAX_STOP_CHARS} characters")
    greedy = temperature == 0.0
    seed = 0 if greedy else (request.seed if request.seed is not None else secrets.randbits(63))
    return Decoding(
        max_new_tokens=request.max_new_tokens or min(default_new_tokens, limit),
        sampling=SamplingParams(temperature, top_p, top_k, seed),
        stop=tuple(request.stop),
    )


def _pick(value: float | None, model_default: float | None, default: float) -> float:
    if value is not None:
        return float(value)
    return float(model_default) if model_default is not None else default


def check_prompt(prompt: str, max_chars: int) -> None:
    if not prompt:
        raise InvalidArgument("prompt", "must not be empty")
    if len(prompt) > max_chars:
        raise InvalidArgument("prompt", f"has {len(prompt)} characters; at most {max_chars}")


def check_chat(messages: Sequence[tuple[str, str]], max_chars: int, field: str = "chat.messages") -> None:
    """(role, content) pairs: roles known, system only first, ends with the user, sizes within limits."""
    if not 1 <= len(messages) <= MAX_MESSAGES:
        raise InvalidArgument(field, f"must hold 1 to {MAX_MESSAGES} messages, got {len(messages)}")
    total = 0
    for i, (role, content) in enumerate(messages):
        if role not in (SYSTEM, USER, ASSISTANT):
            raise InvalidArgument(f"{field}[{i}].role", "must be SYSTEM, USER or ASSISTANT")
        if role == SYSTEM and i != 0:
            raise InvalidArgument(f"{field}[{i}].role", "a SYSTEM message may only come first")
        if not content and role != SYSTEM:
            raise InvalidArgument(f"{field}[{i}].content", "must not be empty")
        if len(content) > max_chars:
            raise InvalidArgument(f"{field}[{i}].content", f"has {len(content)} characters; at most {max_chars}")
        total += len(content)
    if total > max_chars:
        raise InvalidArgument(field, f"hold {total} characters in all; at most {max_chars}")
    if messages[-1][0] != USER:
        raise InvalidArgument(field, "must end with a USER message")
