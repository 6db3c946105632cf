"""Generated token ids -> text deltas, with stop sequences.

Each new token re-decodes the generated ids (byte-level BPE decodes a prefix
stably, except for a character whose bytes are split across tokens), and
hands out only text that is final:
- a trailing U+FFFD (a multi-byte character not complete yet) is held back;
- a tail that could still grow into a stop sequence is held back, so a stop
  sequence never leaks into the output, even across tokens;
- once a stop sequence appears, the text ends right before it.
Concatenating every delta gives exactly the final text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

REPLACEMENT = "\ufffd"


@dataclass
class Delta:
    text: str
    token_ids: list[int]


@dataclass
class TextStream:
    decode: Callable[[Sequence[int]], str]
    stops: Sequence[str] = ()
    ids: list[int] = field(default_factory=list)
    emitted: str = ""  # text already handed out
    pending_ids: list[int] = field(default_factory=list)  # ids not yet covered by a delta
    stop_sequence: str = ""  # the stop sequence that ended the text, if any

    def push(self, token_id: int) -> Delta | None:
        """Add a token; a delta when text became final, None otherwise. Check ``stop_sequence`` after."""
        self.ids.append(token_id)
        self.pending_ids.append(token_id)
        text = self.decode(self.ids)
        hit = self._first_stop(text)
        if hit is not None:
            index, self.stop_sequence = hit
            return self._emit(text[:index], force=True)
        safe = len(text) - self._held_back(text)
        return self._emit(text[:safe]) if safe > len(self.emitted) else None

    def flush(self) -> Delta:
        """Whatever is left at the end of generation, held-back text included (an
        incomplete last character stays as U+FFFD, as ``tokenizer.decode`` gives it)."""
        return self._emit(self.decode(self.ids), force=True)

    def _emit(self, final: str, force: bool = False) -> Delta | None:
        # Decoding is prefix-stable for byte-level BPE, so the new text is the tail.
        new = final[len(self.emitted) :]
        if not new and not force:
            return None
        self.emitted += new
        delta = Delta(new, self.pending_ids)
        self.pending_ids = []
        return delta

    def _first_stop(self, text: str) -> tuple[int, str] | None:
        # Emitted text never holds a whole stop sequence nor ends with a
        # prefix of one, so a new match starts at or after len(emitted).
        best: tuple[int, str] | None = None
        for stop in self.stops:
            index = text.find(stop, len(self.emitted))
            if index >= 0 and (best is None or index < best[0]):
                best = (index, stop)
        return best

    def _held_back(self, text: str) -> int:
        """Characters at the end of ``text`` that may not be handed out yet."""
        if text.endswith(REPLACEMENT):
            return len(text) - len(text.rstrip(REPLACEMENT)) + self._held_back(text.rstrip(REPLACEMENT))
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return min(longest, len(text) - len(self.emitted))
