"""Datasets: content-addressed, validated while they arrive, the bad record named."""

from __future__ import annotations

import hashlib
import io
import zipfile

import grpc
import pytest

from lumen.training.v1 import training_pb2 as pb
from tests.training.data import sklearn_csv, upload_parts


async def _fails(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    return info.value.details() or ""


async def test_same_bytes_same_id(held) -> None:
    _, stubs = held
    data = sklearn_csv("iris")
    first = await stubs.datasets.UploadDataset(upload_parts(data, chunk=1000))
    assert first.dataset.id == hashlib.sha256(data).hexdigest()
    assert first.dataset.record_count == 150
    assert list(first.dataset.labels) == ["setosa", "versicolor", "virginica"]
    assert first.dataset.columns[-1] == "label" and not first.already_existed
    again = await stubs.datasets.UploadDataset(upload_parts(data, chunk=777))
    assert again.dataset.id == first.dataset.id and again.already_existed
    got = await stubs.datasets.GetDataset(pb.GetDatasetRequest(id=first.dataset.id))
    assert got.dataset.size_bytes == len(data)


async def test_first_bad_row_is_named(held) -> None:
    _, stubs = held
    rows = b"a,b,label\n1,2,x\n3,4,y\n5,6\n7,8,\n"
    details = await _fails(stubs.datasets.UploadDataset(upload_parts(rows, chunk=5)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "line 4" in details and "2 columns" in details
    empty_label = b"a,b,label\n1,2,x\n7,8,\n"
    details = await _fails(stubs.datasets.UploadDataset(upload_parts(empty_label)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "line 3, column 3" in details
    no_label = b"a,b,c\n1,2,3\n"
    details = await _fails(stubs.datasets.UploadDataset(upload_parts(no_label)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "label column 'label'" in details
    jsonl = b'{"text": "good", "label": "pos"}\n{"text": "bad", "label": \n'
    details = await _fails(
        stubs.datasets.UploadDataset(upload_parts(jsonl, pb.DATASET_FORMAT_JSONL)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "line 2" in details and "not JSON" in details
    latin1 = "caf\xe9\n".encode("latin-1")
    details = await _fails(
        stubs.datasets.UploadDataset(upload_parts(latin1, pb.DATASET_FORMAT_TEXT)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "line 1" in details and "UTF-8" in details
    listed = await stubs.datasets.ListDatasets(pb.ListDatasetsRequest())
    assert not listed.datasets  # nothing bad was stored


async def test_image_zip_entries(held) -> None:
    from PIL import Image

    _, stubs = held
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("cat", "dog"):
            png = io.BytesIO()
            Image.new("RGB", (8, 8), (200, 10, 10)).save(png, "PNG")
            archive.writestr(f"{label}/a.png", png.getvalue())
        archive.writestr("dog/b.png", b"not a png")
    details = await _fails(
        stubs.datasets.UploadDataset(upload_parts(buffer.getvalue(), pb.DATASET_FORMAT_IMAGE_ZIP)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "entry dog/b.png" in details


async def test_limits_missing_spec_and_unknown_ids(held) -> None:
    _, stubs = held
    big = b"a,label\n" + b"1,x\n" * 20_000  # 80 kB; the fixture allows 64 KiB
    await _fails(stubs.datasets.UploadDataset(upload_parts(big)), grpc.StatusCode.RESOURCE_EXHAUSTED)

    async def chunks_only():
        yield pb.UploadDatasetRequest(chunk=b"a,label\n1,x\n")

    details = await _fails(stubs.datasets.UploadDataset(chunks_only()), grpc.StatusCode.INVALID_ARGUMENT)
    assert "spec" in details
    await _fails(stubs.datasets.GetDataset(pb.GetDatasetRequest(id="f" * 64)), grpc.StatusCode.NOT_FOUND)
    await _fails(stubs.datasets.DeleteDataset(pb.DeleteDatasetRequest(id="f" * 64)), grpc.StatusCode.NOT_FOUND)


async def test_list_pages_and_delete(held) -> None:
    _, stubs = held
    ids = []
    for n in range(5):
        reply = await stubs.datasets.UploadDataset(upload_parts(f"a,label\n{n},x\n{n},y\n".encode()))
        ids.append(reply.dataset.id)
    seen, token = [], ""
    while True:
        page = await stubs.datasets.ListDatasets(pb.ListDatasetsRequest(page_size=2, page_token=token))
        seen += [d.id for d in page.datasets]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1]  # newest first, each once
    await stubs.datasets.DeleteDataset(pb.DeleteDatasetRequest(id=ids[0]))
    await _fails(stubs.datasets.GetDataset(pb.GetDatasetRequest(id=ids[0])), grpc.StatusCode.NOT_FOUND)
    everything = await stubs.datasets.ListDatasets(pb.ListDatasetsRequest(page_size=5000))  # AIP-158: capped
    assert [d.id for d in everything.datasets] == ids[:0:-1] and not everything.next_page_token


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (width, height), 90).save(out, "PNG")
    return out.getvalue()


def _declared_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and holds no pixels: what a decompression bomb shows
    Pillow before it reads anything."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_what_one_upload_may_cost_is_bounded(tmp_path) -> None:
    """Long lines, many zip entries, entries that inflate past the bounds, a bomb's header: each refused with
    its status (the bomb answered INTERNAL before), nothing stored, and the service takes the next upload."""
    from tests.training.conftest import Stubs, training_service

    service = await training_service(
        tmp_path,
        max_concurrent_jobs=0,
        max_record_bytes=100,
        max_dataset_images=3,
        max_image_bytes=64 * 1024,
        max_image_pixels=10_000,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stubs = Stubs(channel)
            upload = stubs.datasets.UploadDataset
            invalid, exhausted = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
            long_line = b"a,label\n1,x\n" + b"9" * 150 + b",y\n"
            for chunk in (7, 1000):  # the line unfinished across chunks, and whole in one chunk
                details = await _fails(upload(upload_parts(long_line, chunk=chunk)), invalid)
                assert "line 3" in details and "max_record_bytes" in details, details
            no_newline = b"word " * 40
            details = await _fails(upload(upload_parts(no_newline, pb.DATASET_FORMAT_TEXT, chunk=30)), invalid)
            assert "line 1" in details and "max_record_bytes" in details, details
            many = _zip({f"{c}/{n}.png": _png(4, 4) for c in ("a", "b") for n in range(2)})
            details = await _fails(upload(upload_parts(many, pb.DATASET_FORMAT_IMAGE_ZIP)), exhausted)
            assert "4 entries" in details and "max_dataset_images" in details, details
            wide = _zip({"a/x.png": _png(4, 4), "b/wide.png": _png(200, 100)})
            details = await _fails(upload(upload_parts(wide, pb.DATASET_FORMAT_IMAGE_ZIP)), invalid)
            assert "entry b/wide.png" in details and "max_image_pixels" in details, details
            padded = _zip({"a/x.png": _png(4, 4), "b/padded.png": _png(4, 4) + b"\0" * 100_000})
            details = await _fails(upload(upload_parts(padded, pb.DATASET_FORMAT_IMAGE_ZIP)), invalid)
            assert "entry b/padded.png" in details and "max_image_bytes" in details, details
            assert not (await stubs.datasets.ListDatasets(pb.ListDatasetsRequest())).datasets
            good = _zip({"a/x.png": _png(4, 4), "b/y.png": _png(8, 8)})
            reply = await upload(upload_parts(good, pb.DATASET_FORMAT_IMAGE_ZIP))
            assert reply.dataset.record_count == 2
    finally:
        await service.stop(0)
    # Past Pillow's own bomb limit (179 M pixels), with the service's bound raised above it.
    service = await training_service(tmp_path / "bomb", max_concurrent_jobs=0, max_image_pixels=10**9)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            bomb = _zip({"a/x.png": _png(4, 4), "b/bomb.png": _declared_png(20_000, 20_000)})
            upload = Stubs(channel).datasets.UploadDataset
            refused = upload(upload_parts(bomb, pb.DATASET_FORMAT_IMAGE_ZIP))
            details = await _fails(refused, grpc.StatusCode.INVALID_ARGUMENT)
            assert "entry b/bomb.png" in details and "not a readable image" in details, details
    finally:
        await service.stop(0)
