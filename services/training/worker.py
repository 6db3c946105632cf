"""The training process of one job: python -m services.training.worker <job dir>.

Reads ``<job dir>/spec.json`` (the same spec for both executors), runs the
recipe, and writes one JSON event per line to stdout and to
``<job dir>/events.jsonl`` (progress, then result or error). The model's
files go to ``<job dir>/model``; checkpoints to ``<job dir>/work``, where a
restarted job finds them. With ``--watch-stdin`` (local executor) the process
exits as soon as its parent closes stdin: a killed service leaves no orphan
training on, and the job resumes from its checkpoint when the service returns.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

EXIT_FAILED = 1
STARTED = "started"  # first event of each run: where a re-attached reader of events.jsonl begins


class Events:
    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8")
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        line = json.dumps(event)
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


def _watch_parent() -> None:
    sys.stdin.buffer.read()  # returns at EOF: the service is gone
    os._exit(EXIT_FAILED)


def _limit_threads(threads: int) -> None:
    # Read by BLAS, torch and TensorFlow when they start (TF's TF_NUM_*_THREADS).
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"


def run(job_dir: Path) -> int:
    spec = json.loads((job_dir / "spec.json").read_text())
    os.nice(int(os.environ.get("LUMEN_TRAINING_WORKER_NICE", "0")))
    _limit_threads(int(os.environ.get("LUMEN_TRAINING_WORKER_THREADS", spec.get("threads", 1))))
    from services.training.recipes import RECIPES
    from services.training.recipes.base import TrainContext, TrainingFailed
    from shared.errors import LumenError

    events = Events(job_dir / "events.jsonl")
    events({"event": STARTED, "pid": os.getpid()})
    out_dir, work_dir = job_dir / "model", job_dir / "work"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    work_dir.mkdir(exist_ok=True)
    recipe = RECIPES[spec["recipe"]]
    ctx = TrainContext(
        dataset=Path(spec["dataset_path"]),
        format=int(spec["format"]),
        label_column=spec["label_column"],
        hyperparameters={k: float(v) for k, v in spec["hyperparameters"].items()},
        validation_split=float(spec["validation_split"]),
        seed=int(spec["seed"]),
        work_dir=work_dir,
        out_dir=out_dir,
        report=events,
    )
    try:
        output = recipe.train(ctx)
    except (TrainingFailed, LumenError) as exc:
        events({"event": "error", "message": getattr(exc, "message", None) or str(exc)})
        return EXIT_FAILED
    except MemoryError:
        events({"event": "error", "message": "out of memory"})
        return EXIT_FAILED
    except Exception as exc:  # a crash of the recipe ends this job only
        traceback.print_exc()
        events({"event": "error", "message": f"training crashed: {type(exc).__name__}: {exc}"})
        return EXIT_FAILED
    events(
        {
            "event": "result",
            "framework": output.framework,
            "parameters": output.parameters,
            "metrics": output.metrics,
            "path": output.path,
            "files": list(output.files),
        }
    )
    return 0


def main() -> None:
    args = sys.argv[1:]
    if "--watch-stdin" in args:
        args.remove("--watch-stdin")
        threading.Thread(target=_watch_parent, daemon=True).start()
    code = run(Path(args[0]))
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: the stdin-watching thread blocks interpreter shutdown on its lock.
    os._exit(code)


if __name__ == "__main__":
    main()
