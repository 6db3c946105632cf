"""Datasets the tests train on, built from data that packages ship."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator

from lumen.training.v1 import training_pb2 as pb


def sklearn_csv(name: str = "iris") -> bytes:
    """scikit-learn's iris / wine as a CSV with a header and a label column."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    out = io.StringIO()
    columns = [c.replace(" ", "_").replace("(cm)", "cm") for c in bunch.feature_names]
    out.write(",".join([*columns, "label"]) + "\n")
    for row, target in zip(bunch.data, bunch.target, strict=True):
        out.write(",".join(f"{v:g}" for v in row) + f",{bunch.target_names[target]}\n")
    return out.getvalue().encode()


def polarity_jsonl() -> bytes:
    """Pang & Lee's 200 polarity sentences from gensim's wheel as {"text", "label"} records."""
    from services.nlp.sentiment_training import LABELS, load_corpus

    texts, labels = load_corpus()
    return "".join(
        json.dumps({"text": t, "label": LABELS[y]}) + "\n" for t, y in zip(texts, labels, strict=True)
    ).encode()


def lee_corpus(documents: int | None = None) -> bytes:
    """The Lee background corpus from gensim's wheel: 300 news articles, one a line (the first ``documents``)."""
    from gensim.test.utils import datapath

    with open(datapath("lee_background.cor"), "rb") as corpus:
        data = corpus.read()
    return data if documents is None else b"".join(data.splitlines(keepends=True)[:documents])


def digits_zip() -> bytes:
    """scikit-learn's 8x8 digits as grey PNGs (0..16 scaled to 0..255) in one folder per digit."""
    from PIL import Image
    from sklearn import datasets

    bunch = datasets.load_digits()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n, (image, target) in enumerate(zip(bunch.images, bunch.target, strict=True)):
            png = io.BytesIO()
            Image.fromarray((image * 255 / 16).round().astype("uint8"), "L").save(png, "PNG")
            archive.writestr(f"{target}/{n:04d}.png", png.getvalue())
    return out.getvalue()


async def upload_parts(
    data: bytes, fmt: int = pb.DATASET_FORMAT_CSV, chunk: int = 4096, label_column: str = ""
) -> AsyncIterator[pb.UploadDatasetRequest]:
    yield pb.UploadDatasetRequest(spec=pb.DatasetSpec(format=fmt, display_name="test", label_column=label_column))
    for i in range(0, len(data), chunk):
        yield pb.UploadDatasetRequest(chunk=data[i : i + chunk])
