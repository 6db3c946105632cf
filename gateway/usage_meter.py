"""The usage of each streamed message a forwarded call relays, read without parsing the message.

The gateway relays backend streams as raw bytes. To bill a stream as it goes
(so that a cancelled or failed stream is billed what it computed, and a quota
can end a long stream), it reads only the ``usage`` field of each message: a
walk over the top-level fields of the wire format that skips every other field
by its length, so a message of large embeddings costs a few steps, not a parse.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import DecodeError

from lumen.common.v1 import common_pb2

USAGE_TYPE = common_pb2.Usage.DESCRIPTOR.full_name


def usage_fields(files: Iterable[FileDescriptor]) -> dict[str, int]:
    """``/package.Service/Method`` -> field number of ``usage`` in its response, for every
    method with a response stream whose message has one."""
    out = {}
    for file in files:
        for service in file.services_by_name.values():
            for method in service.methods:
                field = method.output_type.fields_by_name.get("usage")
                usage_type = field.message_type if field is not None else None
                if method.server_streaming and field and usage_type and usage_type.full_name == USAGE_TYPE:
                    out[f"/{service.full_name}/{method.name}"] = field.number
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def scan_usage(data: bytes, number: int) -> common_pb2.Usage | None:
    """The Usage in field ``number`` of a serialized message (None if absent or unreadable)."""
    found = None
    pos, end = 0, len(data)
    try:
        while pos < end:
            tag, pos = _varint(data, pos)
            kind = tag & 7
            if kind == 0:
                _, pos = _varint(data, pos)
            elif kind == 1:
                pos += 8
            elif kind == 5:
                pos += 4
            elif kind == 2:
                size, pos = _varint(data, pos)
                if tag >> 3 == number:
                    found = found or common_pb2.Usage()
                    found.MergeFromString(data[pos : pos + size])  # a repeated field merges, as parsing does
                pos += size
            else:  # groups: not used by lumen's messages
                return found
    except (IndexError, ValueError, DecodeError):  # a malformed message bills what was read, never fails the call
        return found
    return found
