"""Decoding settings and chat checks: defaults, limits, and the field each error names."""

from __future__ import annotations

import math

import pytest

from services.nlp.generation_params import DecodingRequest, check_chat, resolve
from shared.errors import InvalidArgument


def resolved(**fields):
    return resolve(DecodingRequest(**fields), {}, limit=1024, default_new_tokens=256)


def test_defaults_follow_the_contract() -> None:
    decoding = resolved(seed=5)
    assert decoding.max_new_tokens == 256
    assert (decoding.sampling.temperature, decoding.sampling.top_p, decoding.sampling.top_k) == (1.0, 1.0, 0)
    assert decoding.sampling.seed == 5


def test_greedy_ignores_the_seed_and_unset_seed_is_drawn() -> None:
    assert resolved(temperature=0.0, seed=9).sampling.seed == 0
    assert resolved().sampling.seed != resolved().sampling.seed  # random, 63 bits: never equal in practice


def test_model_generation_config_fills_unset_fields() -> None:
    decoding = resolve(DecodingRequest(top_p=0.5), {"temperature": 0.7, "top_p": 0.9}, 1024, 256)
    assert (decoding.sampling.temperature, decoding.sampling.top_p) == (0.7, 0.5)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"temperature": -0.1}, "params.temperature"),
        ({"temperature": math.nan}, "params.temperature"),
        ({"temperature": math.inf}, "params.temperature"),
        ({"temperature": 2.5}, "params.temperature"),
        ({"top_p": 0.0}, "params.top_p"),
        ({"top_p": 1.5}, "params.top_p"),
        ({"top_p": math.nan}, "params.top_p"),
        ({"top_k": 1001}, "params.top_k"),
        ({"max_new_tokens": 1025}, "params.max_new_tokens"),
        ({"stop": ["x"] * 9}, "params.stop"),
        ({"stop": [""]}, "params.stop[0]"),
    ],
)
def test_bad_values_name_their_field(fields, field) -> None:
    with pytest.raises(InvalidArgument) as error:
        resolved(**fields)
    assert error.value.violations[0][0] == field


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "chat.messages"),
        ([("user", "hi"), ("assistant", "hello")], "chat.messages"),
        ([("", "hi")], "chat.messages[0].role"),
        ([("user", "hi"), ("system", "be nice"), ("user", "hi")], "chat.messages[1].role"),
        ([("user", "")], "chat.messages[0].content"),
        ([("user", "x" * 11)], "chat.messages[0].content"),
        ([("user", "x" * 6), ("assistant", "y" * 6), ("user", "z")], "chat.messages"),
    ],
)
def test_bad_chats_name_their_field(messages, field) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_chat(messages, max_chars=10)
    assert error.value.violations[0][0] == field


def test_a_good_chat_passes() -> None:
    check_chat([("system", ""), ("user", "hi"), ("assistant", "hello"), ("user", "bye")], max_chars=100)
