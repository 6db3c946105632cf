"""The running batch of a causal LM: one KV cache for every sequence being
generated, left-aligned with padding, so that one forward pass advances them all
(TGI's ``Batch.concatenate`` / ``Batch.filter`` on a transformers DynamicCache).

- Sequences that arrive together are prefilled together, in one forward pass
  (prompts left-padded, the padding masked, each row's own position ids), then
  join: the shorter side is padded on the left with masked zeros and the caches
  are concatenated on the batch axis (one concatenation per arrival, not per sequence).
- A decode step feeds every row's last token with its own position id and an
  attention mask that hides the padding, so each row attends to its own tokens only.
- A finished or cancelled sequence leaves at once (its rows are selected away)
  and leading columns that became padding for every row are trimmed.
"""

from __future__ import annotations

from typing import Any

import torch


class DecodeBatch:
    def __init__(self) -> None:
        self.rows: list[Any] = []  # one key per sequence (the scheduler's job), in cache order
        self.cache: Any = None  # DynamicCache [B, heads, L, head_dim] per layer
        self.mask: torch.Tensor | None = None  # [B, L] long: 1 real token, 0 left padding
        self.positions: list[int] = []  # next position id of each row

    def __len__(self) -> int:
        return len(self.rows)

    def keep(self, alive: set[int]) -> None:
        """Drop the rows whose key's id is not in ``alive``; trim padding no row needs."""
        keep = [i for i, row in enumerate(self.rows) if id(row) in alive]
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.rows, self.cache, self.mask, self.positions = [], None, None, []
            return
        index = torch.tensor(keep, device=self.mask.device)
        self.rows = [self.rows[i] for i in keep]
        self.positions = [self.positions[i] for i in keep]
        self.mask = self.mask.index_select(0, index)
        start = int(self.mask.any(dim=0).int().argmax())  # first column some row still uses
        self.mask = self.mask[:, start:]
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]

    def join(self, rows: list[Any], cache: Any, mask: torch.Tensor) -> None:
        """Add prefilled sequences: their cache [n, heads, L, head_dim] and left-padded mask [n, L]."""
        positions = mask.sum(dim=1).tolist()
        if self.cache is None:
            self.rows, self.cache, self.mask, self.positions = list(rows), cache, mask, positions
            return
        width = self.mask.shape[1]
        length = mask.shape[1]
        pad_new, pad_old = max(0, width - length), max(0, length - width)
        self.mask = torch.cat(
            [_pad_left(self.mask, pad_old, dim=1), _pad_left(mask, pad_new, dim=1)],
            dim=0,
        )
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([_pad_left(old.keys, pad_old, dim=2), _pad_left(new.keys, pad_new, dim=2)], dim=0)
            old.values = torch.cat(
                [_pad_left(old.values, pad_old, dim=2), _pad_left(new.values, pad_new, dim=2)], dim=0
            )
        self.rows.extend(rows)
        self.positions.extend(positions)

    def forward(self, model: Any, last_tokens: list[int]) -> torch.Tensor:
        """One step of every row: (B, vocab) float32 logits of the next token."""
        device = self.mask.device
        ids = torch.tensor(last_tokens, device=device).unsqueeze(1)
        self.mask = torch.cat([self.mask, torch.ones(len(self.rows), 1, dtype=torch.long, device=device)], dim=1)
        positions = torch.tensor(self.positions, device=device).unsqueeze(1)
        out = model(input_ids=ids, attention_mask=self.mask, position_ids=positions, cache=self.cache, use_cache=True)
        self.cache = out.cache
        self.positions = [p + 1 for p in self.positions]
        return out.logits[:, -1].to(dtype=torch.float32)


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    if width == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = width
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)
