"""Document metadata and search filters: flat key/value maps of strings, numbers and booleans.

Both arrive as google.protobuf.Struct. Values are compared by kind and value, so
the string "1", the number 1 and the boolean true are three different values
(in Python, True == 1 would make them collide).
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import struct_pb2

from shared.errors import InvalidArgument

MAX_KEYS = 64
MAX_KEY_CHARS = 256
MAX_STRING_CHARS = 8192

Scalar = str | float | bool
Canonical = tuple[str, Scalar]  # (kind, value): ("s", "red"), ("n", 3.0), ("b", True)


def canonical(value: Scalar) -> Canonical:
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", float(value))
    return ("s", value)


def _scalar(value: struct_pb2.Value, field: str) -> Scalar:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        if len(value.string_value) > MAX_STRING_CHARS:
            raise InvalidArgument(field, f"has {len(value.string_value)} characters; at most {MAX_STRING_CHARS}")
        return value.string_value
    if kind == "number_value":
        if not math.isfinite(value.number_value):
            raise InvalidArgument(field, f"must be a finite number, got {value.number_value}")
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    shown = {"null_value": "null", "struct_value": "an object", "list_value": "a list", None: "unset"}[kind]
    raise InvalidArgument(field, f"must be a string, number or boolean, got {shown}")


def parse(struct: struct_pb2.Struct, field: str) -> dict[str, Scalar]:
    """A flat dict from a Struct, or InvalidArgument naming ``field.key``."""
    if len(struct.fields) > MAX_KEYS:
        raise InvalidArgument(field, f"has {len(struct.fields)} keys; at most {MAX_KEYS}")
    out: dict[str, Scalar] = {}
    for key in sorted(struct.fields):
        if not key or len(key) > MAX_KEY_CHARS:
            raise InvalidArgument(f"{field}.{key}", f"keys are 1 to {MAX_KEY_CHARS} characters")
        out[key] = _scalar(struct.fields[key], f"{field}.{key}")
    return out


def to_struct(metadata: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(metadata)
    return struct
