"""Text deltas and stop sequences, with a decoder whose ids are byte values
(so a multi-byte character can be split across tokens, as with byte-level BPE)."""

from __future__ import annotations

from collections.abc import Sequence

from services.nlp.text_stream import TextStream


def decode(ids: Sequence[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


def feed(stream: TextStream, text: str) -> list[str]:
    deltas = []
    for byte in text.encode():
        delta = stream.push(byte)
        if delta is not None:
            deltas.append(delta.text)
        if stream.stop_sequence:
            break
    return deltas


def test_without_stops_every_character_is_handed_out_at_once() -> None:
    stream = TextStream(decode)
    assert feed(stream, "abc") == ["a", "b", "c"]
    assert stream.flush().text == ""
    assert stream.emitted == "abc"


def test_a_split_multibyte_character_waits_until_complete() -> None:
    stream = TextStream(decode)
    deltas = feed(stream, "é!")  # é is two bytes
    assert deltas == ["é", "!"]


def test_stop_sequence_across_tokens_is_never_emitted() -> None:
    stream = TextStream(decode, stops=("END",))
    deltas = feed(stream, "hi ENDING")
    assert "".join(deltas) == "hi "
    assert stream.stop_sequence == "END"
    assert stream.emitted == "hi "


def test_a_false_start_of_a_stop_is_released_later() -> None:
    stream = TextStream(decode, stops=("STOP",))
    deltas = feed(stream, "ST and more")
    assert "".join(deltas) + stream.flush().text == "ST and more"
    assert not stream.stop_sequence


def test_earliest_of_several_stops_wins_and_ids_are_all_covered() -> None:
    stream = TextStream(decode, stops=("world", "lo"))
    text = "hello world"
    covered: list[int] = []
    for byte in text.encode():
        delta = stream.push(byte)
        if delta is not None:
            covered += delta.token_ids
        if stream.stop_sequence:
            break
    assert stream.emitted == "hel"
    assert stream.stop_sequence == "lo"
    assert covered == list(b"hello")


def test_flush_releases_held_back_text_at_the_end() -> None:
    stream = TextStream(decode, stops=("###",))
    deltas = feed(stream, "a ##")
    assert "".join(deltas) == "a "
    assert stream.flush().text == "##"
