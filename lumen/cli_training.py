"""Training commands: train, jobs list|get|watch|cancel|delete, recipes.

``lumen train tabular-dense iris.csv --name iris --param epochs=12`` uploads the
file (a progress bar), creates the job, follows it (a live bar: epoch of total,
loss, metrics, ETA), then prints the served model and one prediction of it on a
record of the same data. Bars go to stderr, results to stdout (--json: the
ended job and the prediction's response). A job that did not succeed exits 1.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from lumen.api_training import dataset_format, job_state
from lumen.cli_output import emit
from lumen.client import Client
from lumen.client_pages import every_page
from lumen.common.v1 import common_pb2
from lumen.embeddings.v1 import embeddings_pb2
from lumen.nlp.v1 import nlp_pb2
from lumen.tabular.v1 import tabular_pb2
from lumen.training.v1 import training_pb2 as pb
from lumen.vision.v1 import vision_pb2

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
STATES = ["queued", "running", "succeeded", "failed", "cancelling", "cancelled"]


def _state(state: int) -> str:
    return pb.JobState.Name(state).removeprefix("JOB_STATE_")


def _metrics(metrics: Any) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in sorted(metrics.items()))


def _params(pairs: list[str]) -> dict[str, float]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            params[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--param {pair!r}: expected NAME=NUMBER, e.g. epochs=12") from None
        if not sep or not name.strip():
            raise ValueError(f"--param {pair!r}: expected NAME=NUMBER, e.g. epochs=12")
    return params


# --- following a job
class JobBar:
    """A tqdm bar on stderr for a job: epochs of total, state, loss, metrics, ETA."""

    def __init__(self, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, desc="queued", unit="epoch", file=sys.stderr, disable=quiet, dynamic_ncols=True)
        self.state = -1

    def show(self, job: pb.TrainingJob) -> None:
        p = job.progress
        if job.state != self.state:
            self.state = job.state
            self.bar.set_description(_state(job.state).lower())
        if p.total_epochs:
            self.bar.total = p.total_epochs
            self.bar.n = p.epoch
        postfix = {"loss": f"{p.loss:.4f}"} if p.epoch else {}
        postfix |= {name: f"{value:.3f}" for name, value in sorted(p.metrics.items())}
        if p.eta_s and job.state == pb.JOB_STATE_RUNNING:
            postfix["eta"] = f"{p.eta_s:.0f}s"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def follow(client: Client, job: pb.TrainingJob, quiet: bool) -> pb.TrainingJob:
    """Watch ``job`` to its end with a live bar; the ended job."""
    bar = JobBar(quiet)
    try:
        for event in client.watch_training_job(job.id):
            bar.show(event)
            job = event
    finally:
        bar.close()
    return job


def describe(job: pb.TrainingJob) -> list[str]:
    """Human lines for a job: state, progress, and its result or error."""
    ran = ""
    if job.HasField("end_time") and job.HasField("start_time"):
        ran = f" in {(job.end_time.ToNanoseconds() - job.start_time.ToNanoseconds()) / 1e9:.0f} s"
    lines = [f"job {job.id} {_state(job.state)}{ran}: {job.recipe} -> {job.model_name}"]
    p = job.progress
    if p.total_epochs:
        resumed = f" (resumed from epoch {p.resumed_from_epoch})" if p.resumed_from_epoch else ""
        lines.append(f"  epoch {p.epoch}/{p.total_epochs}, loss {p.loss:.4f}{resumed}")
    if job.HasField("result"):
        r = job.result
        lines.append(f"  served: {r.model_name} version {r.model_version} by {r.service} ({r.task})")
        if r.metrics:
            lines.append(f"  held-out: {_metrics(r.metrics)}")
    if job.HasField("error") and job.error.code:
        lines.append(f"  {code_pb2.Code.Name(job.error.code)}: {job.error.message}")
    return lines


# --- one prediction of the served model, on a record of the training data
def _first_csv_row(path: Path, label_column: str) -> tuple[list[float], str]:
    with path.open(newline="") as rows:
        reader = csv.reader(rows)
        header = next(reader)
        row = next(reader)
    label_at = header.index(label_column or "label")
    return [float(v) for i, v in enumerate(row) if i != label_at], row[label_at]


def _first_record(path: Path, label_column: str) -> tuple[str, str]:
    with path.open() as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                return str(record["text"]), str(record.get(label_column or "label", ""))
    raise ValueError(f"{path}: no record")


def _corpus_words(path: Path) -> list[str]:
    with path.open(errors="replace") as corpus:
        return re.findall(r"[a-z]+", corpus.read(1 << 20).lower())


def _first_image(source: Path) -> tuple[bytes, str]:
    if source.is_dir():
        image = next(p for p in sorted(source.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES)
        return image.read_bytes(), image.parent.name
    with zipfile.ZipFile(source) as archive:
        name = next(n for n in sorted(archive.namelist()) if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        return archive.read(name), Path(name).parent.name


def sample_prediction(client: Client, job: pb.TrainingJob, data: Path, label_column: str) -> tuple[str, Message]:
    """Call the served model once on the first record of ``data``: (a human line, the response)."""
    result = job.result
    model = common_pb2.ModelRef(name=result.model_name, version=result.model_version)
    if result.task == "tabular-classification":
        values, label = _first_csv_row(data, label_column)
        request = tabular_pb2.PredictRequest(model=model, rows=[tabular_pb2.FeatureRow(values=values)])
        reply = client.call(client.tabular.Predict, request)
        top = reply.predictions[0].classes[0]
        return f"{values} -> {top.label} {top.probability:.2f} (labelled {label})", reply
    if result.task == "text-classification":
        text, label = _first_record(data, label_column)
        reply = client.call(client.text.ClassifyText, nlp_pb2.ClassifyTextRequest(model=model, texts=[text]))
        top = reply.results[0].labels[0]
        return f"{text[:60]!r} -> {top.label} {top.score:.2f} (labelled {label})", reply
    if result.task == "text-generation":
        prompt = " ".join(_corpus_words(data)[:3])
        params = nlp_pb2.GenerationParams(max_new_tokens=8, temperature=0.0)
        reply = client.call(
            client.generation.Generate, nlp_pb2.GenerateRequest(model=model, prompt=prompt, params=params)
        )
        return f"{prompt!r} -> {reply.text!r}", reply
    if result.task == "word-embedding":
        counts = collections.Counter(w for w in _corpus_words(data) if len(w) >= 5)
        word = counts.most_common(1)[0][0]
        request = embeddings_pb2.MostSimilarWordsRequest(model=model, positive=[word], top_k=5)
        reply = client.call(client.words.MostSimilarWords, request)
        return f"{word} ~ {', '.join(w.word for w in reply.words)}", reply
    if result.task == "image-classification":
        content, label = _first_image(data)
        request = vision_pb2.ClassifyImagesRequest(model=model, images=[common_pb2.Image(content=content)], top_k=1)
        reply = client.call(client.images.ClassifyImages, request)
        top = reply.results[0].labels[0]
        return f"first image -> {top.label} {top.score:.2f} (labelled {label})", reply
    raise ValueError(f"no sample prediction for task {result.task!r}")


# --- commands
def _train(client: Client, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    data = Path(args.data)
    fmt = dataset_format(data, args.format)  # a bad suffix fails before any upload
    quiet = args.json or args.quiet
    with tqdm(total=0, desc="uploading", unit="B", unit_scale=True, file=sys.stderr, disable=quiet) as bar:

        def sent(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        uploaded = client.upload_dataset(data, fmt, args.label_column, on_sent=sent)
    dataset = uploaded.dataset
    if not quiet:
        known = " (already stored)" if uploaded.already_existed else ""
        print(f"dataset {dataset.id[:12]}: {dataset.record_count} records{known}", file=sys.stderr)
    job = client.create_training_job(
        args.recipe, dataset.id, args.name, _params(args.param), args.validation_split, args.seed, args.request_id
    )
    job = follow(client, job, quiet)
    if job.state != pb.JOB_STATE_SUCCEEDED:
        emit(args, job, lambda: print("\n".join(describe(job))))
        return 1
    line, reply = sample_prediction(client, job, data, args.label_column)
    emit(args, [job, reply], lambda: print("\n".join([*describe(job), f"  sample: {line}"])))
    return 0


def _jobs(client: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        request = pb.ListTrainingJobsRequest(state=job_state(args.state))  # type: ignore[arg-type]
        jobs = every_page(client.call, client.training.ListTrainingJobs, request, "jobs")

        def table() -> None:
            for j in jobs:
                epochs = f"{j.progress.epoch}/{j.progress.total_epochs}" if j.progress.total_epochs else "-"
                created = j.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M")
                print(f"{j.id}  {_state(j.state):<10} {j.recipe:<14} {j.model_name:<24} {epochs:>7}  {created}")

        emit(args, pb.ListTrainingJobsResponse(jobs=jobs), table)
        return 0
    if not args.id:
        raise ValueError(f"jobs {args.action} needs a job id")
    if args.action == "delete":
        client.delete_training_job(args.id)
        emit(args, pb.DeleteTrainingJobResponse(), lambda: print(f"deleted {args.id}"))
        return 0
    if args.action == "cancel":
        job = client.cancel_training_job(args.id)
    elif args.action == "watch":
        job = follow(client, client.get_training_job(args.id), args.json or args.quiet)
    else:
        job = client.get_training_job(args.id)
    emit(args, job, lambda: print("\n".join(describe(job))))
    return 1 if args.action == "watch" and job.state != pb.JOB_STATE_SUCCEEDED else 0


def _recipes(client: Client, args: argparse.Namespace) -> None:
    recipes = client.list_recipes()

    def human() -> None:
        for r in recipes:
            formats = ", ".join(pb.DatasetFormat.Name(f).removeprefix("DATASET_FORMAT_") for f in r.formats)
            print(f"{r.name}: {r.description} [{formats}] -> {r.service} {r.task}")
            for h in r.hyperparameters:
                kind = "integer" if h.integer else "number"
                print(f"  --param {h.name}={h.default_value:g}  ({kind} {h.min:g}..{h.max:g}) {h.description}")

    emit(args, pb.ListRecipesResponse(recipes=recipes), human)


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a model on your data; it is served when it succeeds")
    train.add_argument("recipe", help="e.g. text-lstm, next-word, minilm-classifier (all: lumen recipes)")
    train.add_argument("data", help="a .csv, .jsonl, .txt or .zip file, or a folder of one folder of images per class")
    train.add_argument("--name", required=True, help="name of the model to serve (a new version if it exists)")
    train.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a hyperparameter")
    train.add_argument("--format", default="", choices=["", "csv", "jsonl", "text", "image_zip"])
    train.add_argument("--label-column", default="", help="label column or field (default: label)")
    train.add_argument("--validation-split", type=float, default=0.0, help="held-out share (default 0.2)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--request-id", default="", help="makes a retried command reuse its job")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(run=_train)
    jobs = commands.add_parser("jobs", help="training jobs: list [--state S], get|watch|cancel|delete ID")
    jobs.add_argument("action", choices=["list", "get", "watch", "cancel", "delete"])
    jobs.add_argument("id", nargs="?", default="")
    jobs.add_argument("--state", default="", type=str.lower, choices=["", *STATES], help="list: only jobs in it")
    jobs.add_argument("--quiet", action="store_true", help="no progress bar (watch)")
    jobs.set_defaults(run=_jobs)
    recipes = commands.add_parser("recipes", help="recipes and their hyperparameters")
    recipes.set_defaults(run=_recipes)
