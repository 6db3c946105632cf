"""`lumen` commands through a real gateway and real models: human and --json output, files and
folders as input, the progress bar, --draw, and the one-line errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lumen import cli
from lumen.client import Client
from tests.cli.conftest import CliRunner
from tests.in_process import running_gateway
from tests.vision import samples

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of real photos (scikit-image's cat and astronaut) as JPEG files."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "astronaut"):
        Image.fromarray(samples.skimage_photo(name)[..., :3]).save(folder / f"{name}.jpg", quality=92)
    return folder


async def test_words_similar_analogy_and_similarity(run_cli: CliRunner) -> None:
    code, out, _ = await run_cli("--json", "words", "similar", "dog", "--top-k", "5")
    assert code == 0
    neighbours = [w["word"] for w in json.loads(out)["words"]]
    assert len(neighbours) == 5 and "dog" not in neighbours
    assert {"dogs", "cat", "puppy"} & set(neighbours)
    code, out, _ = await run_cli("--json", "words", "analogy", "man", "king", "woman")
    assert code == 0 and "queen" in [w["word"] for w in json.loads(out)["words"]][:5]
    code, out, _ = await run_cli("words", "similarity", "cat", "dog")
    close = float(out.split(":")[-1])
    code, out, _ = await run_cli("words", "similarity", "cat", "parliament")
    assert code == 0 and close > float(out.split(":")[-1])


async def test_unknown_word_is_one_error_line_naming_the_field(run_cli: CliRunner) -> None:
    code, out, err = await run_cli("words", "similarity", "cat", "qzxvjkw")
    assert code == 1 and out == ""
    line = err.strip()
    assert "\n" not in line
    assert line == "ERROR NOT_FOUND: word 'qzxvjkw' not found (word_b)"
    # An INVALID_ARGUMENT's field comes from the google.rpc.BadRequest detail.
    code, _, err = await run_cli("words", "similarity", "cat", "")
    assert code == 1 and err.startswith("ERROR INVALID_ARGUMENT: ") and err.strip().endswith("(field: word_b)")


async def test_tokens_lists_pieces(run_cli: CliRunner) -> None:
    code, out, _ = await run_cli("--json", "tokens", "Tokenize this, please.", "--model", "minilm-zero-shot")
    assert code == 0
    pieces = [t["piece"] for t in json.loads(out)["results"][0]["tokens"]]
    assert "token" in "".join(pieces) and "please" in pieces


async def test_index_a_jsonl_with_progress_then_search_and_collections(run_cli: CliRunner, tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    rows = [
        {"id": "pets", "text": "My dog loves chasing the ball in the park."},
        {"id": "space", "text": "The rocket launched the satellite into orbit.", "metadata": {"topic": "space"}},
        {"id": "food", "text": "Slow-cooked tomato sauce with basil and garlic."},
    ]
    docs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    code, out, err = await run_cli("index", docs, "--collection", "cli-docs", "--batch-size", "2")
    assert code == 0, err
    assert "indexed 3 of 3 documents into cli-docs" in out
    assert "3/3" in err  # tqdm's bar, on stderr
    code, out, _ = await run_cli("--json", "search", "spacecraft going to space", "--collection", "cli-docs")
    hits = json.loads(out)["hits"]
    assert code == 0 and hits[0]["hit"]["id"] == "space"
    assert hits[0]["hit"]["document"]["metadata"] == {"topic": "space"}
    code, out, _ = await run_cli("search", "space", "--collection", "cli-docs", "--where", "topic=space")
    assert code == 0 and [line.split()[1] for line in out.splitlines()] == ["cli-docs/space"]
    code, out, _ = await run_cli("collections", "list")
    assert code == 0 and any(line.split()[0] == "cli-docs" and "3 documents" in line for line in out.splitlines())
    code, out, _ = await run_cli("--json", "collections", "get", "cli-docs")
    assert code == 0 and json.loads(out)["collection"]["documentCount"] == "3"
    assert (await run_cli("collections", "delete", "cli-docs"))[0] == 0
    code, _, err = await run_cli("collections", "get", "cli-docs")
    assert code == 1 and err.startswith("ERROR NOT_FOUND: ")


async def test_index_a_folder(run_cli: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("Gardening in spring: tulips and daffodils.")
    (tmp_path / "notes" / "b.md").write_text("Fixing a flat bicycle tyre.")
    code, out, _ = await run_cli("--json", "index", tmp_path / "notes", "--collection", "cli-notes")
    assert code == 0 and sum(r.get("indexed", 0) for r in json.loads(out)) == 2
    code, out, _ = await run_cli("search", "flowers", "--collection", "cli-notes", "--top-k", "1")
    assert code == 0 and "cli-notes/a.txt" in out


async def test_bad_jsonl_is_one_error_line(run_cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    code, _, err = await run_cli("index", bad, "--collection", "cli-bad")
    assert code == 1 and err.startswith("ERROR INVALID_ARGUMENT: ") and "bad.jsonl:1" in err


async def test_classify_a_folder(run_cli: CliRunner, photos: Path) -> None:
    code, out, _ = await run_cli("--json", "classify", photos, "--top-k", "5")
    assert code == 0
    results = json.loads(out)["results"]
    assert len(results) == 2  # sorted: astronaut, chelsea
    cat_labels = [lab["label"] for lab in results[1]["labels"]]
    assert len(set(cat_labels)) == 5 and any("cat" in label for label in cat_labels)
    code, out, _ = await run_cli("classify", photos / "chelsea.jpg")
    assert code == 0 and out.splitlines()[1].startswith(f"{photos / 'chelsea.jpg'}: ")


async def test_detect_on_a_photo_without_its_objects_draws_nothing(
    run_cli: CliRunner, photos: Path, tmp_path: Path
) -> None:
    out_png = tmp_path / "none.png"
    code, out, err = await run_cli("detect", photos / "astronaut.jpg", "--draw", out_png)
    assert code == 0, err
    assert "opencv-objects" in out and "drew 0 boxes" in out
    source = np.asarray(Image.open(photos / "astronaut.jpg").convert("RGB"))
    with Image.open(out_png) as drawn:
        assert drawn.format == "PNG" and np.array_equal(np.asarray(drawn.convert("RGB")), source)


async def test_faces_detect_draws_the_box(run_cli: CliRunner, photos: Path, tmp_path: Path) -> None:
    out_png = tmp_path / "faces.png"
    photo = photos / "astronaut.jpg"
    code, out, err = await run_cli("--json", "faces", "detect", photo, "--draw", out_png)
    assert code == 0, err
    faces = json.loads(out)["results"][0]["faces"]
    assert len(faces) == 1  # her face; not the mission patch on her suit (see the vision README)
    source = np.asarray(Image.open(photo).convert("RGB"), dtype=np.int16)
    with Image.open(out_png) as drawn:
        assert drawn.format == "PNG" and drawn.size == (source.shape[1], source.shape[0])
        pixels = np.asarray(drawn.convert("RGB"), dtype=np.int16)
    height, width = source.shape[:2]
    changed = np.abs(pixels - source).sum(axis=2) > 0
    for face in faces:
        box = face["box"]
        x0, y0 = int(box.get("xMin", 0) * width), int(box.get("yMin", 0) * height)
        y1 = int(box["yMax"] * height)
        # The outline runs along each box's left edge.
        assert changed[y0 + 1 : y1, x0 : x0 + 2].mean() > 0.9
    # Right of every box the photo is untouched.
    right = max(int(face["box"]["xMax"] * width) for face in faces) + 20
    assert not changed[:, right:].any()


async def test_detect_bad_image_names_the_field(run_cli: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    code, out, err = await run_cli("detect", broken)
    assert code == 1 or "INVALID_ARGUMENT" in out
    if code == 1:
        assert err.startswith("ERROR INVALID_ARGUMENT: ") and "images[0]" in err


async def test_usage_counts_the_calls_made(run_cli: CliRunner, gateway) -> None:
    with Client(f"127.0.0.1:{gateway.port}") as client:
        await asyncio.to_thread(client.embed, ["count me"])
    code, out, _ = await run_cli("--json", "usage")
    assert code == 0
    usage = json.loads(out)
    assert int(usage["calls"]) >= 1
    assert any(m["method"].endswith("Embed") for m in usage["methods"])


async def test_models_and_health_still_work(run_cli: CliRunner) -> None:
    code, out, _ = await run_cli("--json", "models")
    names = {m["name"] for m in json.loads(out)["models"]}
    assert code == 0 and {"glove-6b-50d", "efficientnet-lite0", "opencv-objects"} <= names
    assert await run_cli("health") == (0, "SERVING\n", "")


async def test_faces_galleries_enroll_identify_verify(run_cli: CliRunner, tmp_path: Path) -> None:
    # Her head and shoulders.
    astronaut = tmp_path / "eileen.jpg"
    Image.fromarray(samples.skimage_photo("astronaut")[:256, :, :3]).save(astronaut, quality=92)
    assert (await run_cli("faces", "galleries", "create", "cli-crew"))[0] == 0
    code, out, err = await run_cli("faces", "enroll", astronaut, "--gallery", "cli-crew", "--person", "eileen")
    assert code == 0, err
    assert out.startswith("enrolled 1 of 1 images for eileen")
    code, out, _ = await run_cli("--json", "faces", "identify", astronaut, "--gallery", "cli-crew")
    faces = json.loads(out)["results"][0]["faces"]
    assert code == 0 and [c["personId"] for c in faces[0]["candidates"] if c.get("match")] == ["eileen"]
    code, out, _ = await run_cli("faces", "verify", astronaut, astronaut)
    assert code == 0 and out.startswith("same person")
    code, out, _ = await run_cli("faces", "galleries", "list")
    assert code == 0 and any(line.split()[0] == "cli-crew" and "1 people" in line for line in out.splitlines())
    assert (await run_cli("faces", "galleries", "delete", "cli-crew"))[0] == 0
    code, _, err = await run_cli("faces", "identify", astronaut, "--gallery", "cli-crew")
    assert code == 1 and err.startswith("ERROR NOT_FOUND: ")


async def test_keys_made_by_the_cli_open_a_gateway(run_cli: CliRunner, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    code, out, err = await run_cli("keys", "--file", keys_file, "create", "--id", "cli-team", "--services", "all")
    assert code == 0, err
    secret = out.splitlines()[0]
    code, out, _ = await run_cli("keys", "--file", keys_file, "list")
    assert code == 0 and out.startswith("cli-team: ") and secret not in keys_file.read_text()
    async with running_gateway(keys_file=str(keys_file)) as gateway:

        def usage(*key: str) -> int:
            return cli.main(["--address", f"127.0.0.1:{gateway.port}", *key, "usage"])

        assert await asyncio.to_thread(usage, "--api-key", secret) == 0
        assert await asyncio.to_thread(usage) == 1  # no key: UNAUTHENTICATED
        code, _, _ = await run_cli("keys", "--file", keys_file, "revoke", "--id", "cli-team")
        assert code == 0 and "cli-team" not in keys_file.read_text()


async def test_embed_file_streams_with_progress(run_cli: CliRunner, gateway, tmp_path: Path) -> None:
    texts = [f"Sentence number {i} about {topic}." for i, topic in enumerate(["cats", "rockets", "soup"] * 3)]
    source, out = tmp_path / "texts.txt", tmp_path / "vectors.npy"
    source.write_text("\n".join(texts) + "\n")
    code, printed, err = await run_cli("embed", "--file", source, "--chunk-size", "4", "--out", out)
    assert code == 0, err
    assert printed.startswith("embedded 9 texts (384 dims) in 3 chunks")
    assert "9/9" in err  # tqdm's bar, on stderr
    with Client(f"127.0.0.1:{gateway.port}") as client:
        expected = await asyncio.to_thread(client.embed, texts)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-5)
