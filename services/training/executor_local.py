"""Local executor: each job in its own subprocess (niced, thread-limited).

The child lowers its own priority and threads (services.training.worker): no
preexec_fn here, because Python then forks without exec'ing at once and gRPC's
fork handlers abort the child of a process that serves gRPC.

Events are read from the child's stdout as it writes them (pushed by the
recipe's callback), its stderr goes to ``<job dir>/log.txt``. The child's stdin
is a pipe it watches: when this service dies, even by kill -9, the pipe
closes and the child exits, so a restarted service resumes the job from its
checkpoint rather than racing an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from services.training.executor import OnEvent, OnExit
from services.training.settings import ROOT

log = logging.getLogger(__name__)
STOP_GRACE_S = 5.0


class LocalExecutor:
    def __init__(self, on_event: OnEvent, on_exit: OnExit, nice: int, threads: int, device_env: dict[str, str]) -> None:
        self.on_event, self.on_exit = on_event, on_exit
        self.nice, self.threads, self.device_env = nice, threads, device_env
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.followers: dict[str, asyncio.Task[None]] = {}

    async def start(self, job_id: str, job_dir: Path) -> None:
        env = {
            **os.environ,
            **self.device_env,
            "PYTHONPATH": str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "LUMEN_TRAINING_WORKER_NICE": str(self.nice),
            "LUMEN_TRAINING_WORKER_THREADS": str(self.threads),
        }
        log_file = (job_dir / "log.txt").open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.training.worker",
                "--watch-stdin",
                str(job_dir),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                limit=1 << 20,
            )
        finally:
            log_file.close()
        self.processes[job_id] = process
        self.followers[job_id] = asyncio.create_task(self._follow(job_id, job_dir, process))
        log.info("job %s started as process %d", job_id, process.pid)

    async def _follow(self, job_id: str, job_dir: Path, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a library printing to stdout
            try:
                await self.on_event(job_id, event)
            except Exception:
                log.exception("job %s: event not recorded", job_id)
        code = await process.wait()
        self.processes.pop(job_id, None)
        self.followers.pop(job_id, None)
        await self.on_exit(job_id, code, _tail(job_dir / "log.txt"))

    async def cancel(self, job_id: str) -> None:
        process = self.processes.get(job_id)
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), STOP_GRACE_S)
        except TimeoutError:
            process.kill()

    async def close(self) -> None:
        for task in list(self.followers.values()):
            task.cancel()
        for process in list(self.processes.values()):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        self.processes.clear()


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
