"""The executor interface: run one job spec somewhere, report its events and its end.

The job manager owns queueing and concurrency; an executor only starts,
cancels and follows jobs. `LocalExecutor` runs each job as a niced,
thread-limited subprocess of this service (services.training.executor_local);
`KubernetesExecutor` as a batch/v1 Job (services.training.executor_kubernetes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

OnEvent = Callable[[str, dict[str, Any]], Awaitable[None]]
OnExit = Callable[[str, int, str], Awaitable[None]]  # job id, exit code, last lines of its log


class Executor(Protocol):
    async def start(self, job_id: str, job_dir: Path) -> None:
        """Start the job whose spec.json is in ``job_dir``; events and the exit come back by callback."""
        ...

    async def cancel(self, job_id: str) -> None:
        """Stop the job; its exit is still reported."""
        ...

    async def close(self) -> None:
        """Stop following jobs (the service stops); local jobs stop too, and resume at the next start."""
        ...
