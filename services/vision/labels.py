"""Label maps: class id -> readable name, from the files models bring.

- ``*.pbtxt``: the TF Object Detection API's StringIntLabelMap
  (``item { id: 1 name: "/m/01g317" display_name: "person" }``); display_name
  is preferred over name. Ids as written (1-based by that API's convention).
- ``*.json``: a list (index = id, 0-based) or an object {"id": "name"}.
- ``*.txt``: one name per line, line n (0-based) = id n.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"""(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(-?\d+))""")


class LabelMap:
    def __init__(self, names: Mapping[int, str]) -> None:
        self.names = dict(names)

    @classmethod
    def from_list(cls, names: Sequence[str]) -> LabelMap:
        return cls(dict(enumerate(names)))

    @classmethod
    def load(cls, path: Path) -> LabelMap:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".pbtxt":
            return cls(_parse_pbtxt(text, path))
        if path.suffix == ".json":
            raw = json.loads(text)
            if isinstance(raw, list):
                return cls.from_list([str(n) for n in raw])
            return cls({int(k): str(v) for k, v in raw.items()})
        return cls.from_list([line.strip() for line in text.splitlines() if line.strip()])

    def __len__(self) -> int:
        return len(self.names)

    def name(self, label_id: int) -> str:
        """The class's name; its id as text when the map has none."""
        return self.names.get(label_id, str(label_id))


def _parse_pbtxt(text: str, path: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for block in _ITEM.findall(text):
        fields: dict[str, str] = {}
        for key, dq, sq, number in _FIELD.findall(block):
            fields[key] = dq or sq or number
        if "id" not in fields:
            raise ValueError(f"{path}: label map item without id: {block.strip()!r}")
        names[int(fields["id"])] = fields.get("display_name") or fields.get("name") or fields["id"]
    if not names:
        raise ValueError(f"{path}: no 'item {{ id: ... }}' entries")
    return names
