"""Validation of dataset bytes while they arrive, one validator per format.

Line formats (CSV, JSONL, TEXT) are checked line by line as chunks come in, so
the first bad record is named as soon as it is read; a zip of images is
checked once complete (its directory sits at the end). Each validator raises
InvalidArgument naming the record ("line 7, column 3", "entry cats/x.png").
CSV fields may not hold line breaks (one record per line).

What one upload may cost is bounded by ``RecordLimits`` as well as by the
dataset's bytes: a line is at most ``max_record_bytes`` (an unfinished line is
held in memory), a zip holds at most ``max_images`` entries (its directory is
read into memory, ~0.5 kB an entry, and each entry is checked) and each entry
inflates to at most ``max_image_bytes`` and ``max_image_pixels`` (a deflated
entry costs its inflated size, which the upload's size does not bound).
"""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lumen.training.v1 import training_pb2
from shared.errors import InvalidArgument, ResourceExhausted

MAX_LISTED_LABELS = 1000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass(frozen=True)
class RecordLimits:
    max_record_bytes: int = 1 << 20
    max_images: int = 50_000
    max_image_bytes: int = 16 << 20
    max_image_pixels: int = 16_000_000


@dataclass
class Summary:
    records: int = 0
    columns: list[str] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)

    def add_label(self, label: str) -> None:
        if len(self.labels) < MAX_LISTED_LABELS:
            self.labels.add(label)


def _bad(where: str, why: str) -> InvalidArgument:
    return InvalidArgument("chunk", f"{where}: {why}")


class LineValidator:
    """Splits the stream into lines and checks each one."""

    def __init__(self, label_column: str, limits: RecordLimits) -> None:
        self.label_column = label_column or "label"
        self.limits = limits
        self.summary = Summary()
        self._rest = b""
        self._line = 0

    def feed(self, chunk: bytes) -> None:
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for raw in lines:
            self._check_length(raw)
            self._one(raw)
        self._check_length(self._rest)  # an unfinished line is held in memory until its newline comes

    def _check_length(self, raw: bytes) -> None:
        if len(raw) > self.limits.max_record_bytes:
            limit = self.limits.max_record_bytes
            raise _bad(f"line {self._line + 1}", f"longer than max_record_bytes ({limit} bytes)")

    def finish(self, path: Path) -> Summary:
        if self._rest:
            self._one(self._rest)
            self._rest = b""
        if self.summary.records == 0:
            raise _bad("dataset", "holds no records")
        return self.summary

    def _one(self, raw: bytes) -> None:
        self._line += 1
        try:
            text = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            raise _bad(f"line {self._line}", f"not UTF-8 (byte {exc.start + 1})") from None
        if text.strip():
            self.check(text, self._line)

    def check(self, text: str, line: int) -> None:
        raise NotImplementedError


class CsvValidator(LineValidator):
    def check(self, text: str, line: int) -> None:
        try:
            row = next(csv.reader([text]))
        except csv.Error as exc:
            raise _bad(f"line {line}", str(exc)) from None
        summary = self.summary
        if not summary.columns:
            if self.label_column not in row:
                raise _bad(f"line {line}", f"the header has no label column {self.label_column!r}")
            summary.columns = [c.strip() for c in row]
            self._label_at = row.index(self.label_column)
            return
        if len(row) != len(summary.columns):
            raise _bad(f"line {line}", f"{len(row)} columns where the header has {len(summary.columns)}")
        label = row[self._label_at].strip()
        if not label:
            raise _bad(f"line {line}, column {self._label_at + 1}", "empty label")
        summary.records += 1
        summary.add_label(label)


class JsonlValidator(LineValidator):
    def check(self, text: str, line: int) -> None:
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _bad(f"line {line}, column {exc.colno}", f"not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise _bad(f"line {line}", "not a JSON object")
        label = record.get(self.label_column)
        if label is None or str(label).strip() == "":
            raise _bad(f"line {line}", f"no {self.label_column!r} field")
        if not self.summary.columns:
            self.summary.columns = list(record)
        self.summary.records += 1
        self.summary.add_label(str(label))


class TextValidator(LineValidator):
    def check(self, text: str, line: int) -> None:
        self.summary.records += 1


class ImageZipValidator:
    """Buffers nothing: the bytes are already written to disk; checks the zip at the end."""

    def __init__(self, label_column: str, limits: RecordLimits) -> None:
        self.limits = limits
        self.summary = Summary()

    def feed(self, chunk: bytes) -> None:
        pass

    def finish(self, path: Path) -> Summary:
        limits = self.limits
        entries = _zip_entries(path)
        if entries > limits.max_images:
            raise ResourceExhausted(
                f"the zip holds {entries} entries; max_dataset_images is {limits.max_images}", subject="dataset"
            )
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise _bad("dataset", f"not a readable zip archive ({exc})") from None
        with archive:
            for info in archive.infolist():
                if info.is_dir() or info.filename.startswith("__MACOSX/"):
                    continue
                parts = info.filename.split("/")
                if len(parts) != 2 or not parts[0]:
                    raise _bad(f"entry {info.filename}", "images must sit in one folder per class (class/image.png)")
                if not parts[1].lower().endswith(IMAGE_SUFFIXES):
                    raise _bad(f"entry {info.filename}", f"not an image file ({', '.join(IMAGE_SUFFIXES)})")
                self._check_image(archive, info)
                self.summary.records += 1
                self.summary.add_label(parts[0])
        if self.summary.records == 0:
            raise _bad("dataset", "holds no images")
        return self.summary

    def _check_image(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        """Header and pixel count, then Pillow's verify, read from the zip as a stream (never inflated whole)."""
        from PIL import Image

        limits, where = self.limits, f"entry {info.filename}"
        if info.file_size > limits.max_image_bytes:
            raise _bad(where, f"inflates to {info.file_size} bytes; max_image_bytes is {limits.max_image_bytes}")
        try:
            with archive.open(info) as stream, Image.open(stream) as image:
                width, height = image.size
                if width * height > limits.max_image_pixels:
                    raise _bad(where, f"{width} x {height} pixels; max_image_pixels is {limits.max_image_pixels}")
                image.verify()
        except InvalidArgument:
            raise
        # What Pillow's plugins and a damaged entry raise (UnidentifiedImageError is an OSError).
        except (Image.DecompressionBombError, zipfile.BadZipFile, OSError, EOFError, SyntaxError, ValueError) as exc:
            raise _bad(where, f"not a readable image ({exc})") from None


def _zip_entries(path: Path) -> int:
    """The entry count of the zip's directory, read before zipfile parses all of it into memory."""
    # _EndRecData is private but unchanged since Python 2, and reads zip64 records too.
    end_record = getattr(zipfile, "_EndRecData")  # noqa: B009
    with path.open("rb") as handle:
        end = end_record(handle)
    if end is None:
        raise _bad("dataset", "not a zip archive")
    return int(end[4])  # zipfile._ECD_ENTRIES_TOTAL


VALIDATORS = {
    training_pb2.DATASET_FORMAT_CSV: CsvValidator,
    training_pb2.DATASET_FORMAT_JSONL: JsonlValidator,
    training_pb2.DATASET_FORMAT_TEXT: TextValidator,
    training_pb2.DATASET_FORMAT_IMAGE_ZIP: ImageZipValidator,
}
